import { describe, expect, it } from 'vitest';

import {
  CatalogError,
  parseCatalog,
  serializeCatalog,
  validateCatalog,
} from '../../src/analyze/catalog.js';

const EXAMPLE = `
services:
  - name: billing
    team: payments
    contact: payments-oncall@example.com
    rules:
      ip: [203.0.113.0/24, 2001:db8:1::/48]
      ptr: [.mail.billing.example.com]
      dkim: [{ domain: billing.example.com, selector: s1 }, Billing.Example.com]
      spf: [bounces.billing.example.com]
      header_from: [billing.example.com]
      provider: sendgrid
  - name: marketing
    rules:
      provider: [mailchimp, mandrill]
      header_from: news.example.com
`;

function issuesOf(text: string): string[] {
  try {
    parseCatalog(text, { source: 'services.yaml' });
  } catch (error) {
    expect(error).toBeInstanceOf(CatalogError);
    return (error as CatalogError).issues;
  }
  throw new Error('expected parseCatalog to fail');
}

describe('parseCatalog', () => {
  it('reads the documented example', () => {
    const catalog = parseCatalog(EXAMPLE);
    expect(catalog.services).toHaveLength(2);

    const billing = catalog.services[0];
    expect(billing.name).toBe('billing');
    expect(billing.team).toBe('payments');
    expect(billing.contact).toBe('payments-oncall@example.com');
    expect(billing.description).toBeNull();
    expect(billing.rules).toEqual({
      ip: ['203.0.113.0/24', '2001:db8:1::/48'],
      ptr: ['.mail.billing.example.com'],
      dkim: [
        { domain: 'billing.example.com', selector: 's1' },
        { domain: 'billing.example.com', selector: null },
      ],
      spf: ['bounces.billing.example.com'],
      headerFrom: ['billing.example.com'],
      provider: ['sendgrid'],
    });
  });

  it('reads single values as lists', () => {
    const marketing = parseCatalog(EXAMPLE).services[1];
    expect(marketing.team).toBeNull();
    expect(marketing.rules.headerFrom).toEqual(['news.example.com']);
    expect(marketing.rules.provider).toEqual(['mailchimp', 'mandrill']);
    expect(marketing.rules.ip).toEqual([]);
  });

  it('reads an empty file as an empty catalog', () => {
    expect(parseCatalog('').services).toEqual([]);
    expect(parseCatalog('services: []').services).toEqual([]);
  });

  it('names service and rule of an invalid CIDR', () => {
    const issues = issuesOf(`
services:
  - name: billing
    rules:
      ip: [203.0.113.0/24, 300.1.2.0/24]
`);
    expect(issues).toEqual(['Service "billing", rule ip[1]: invalid CIDR "300.1.2.0/24"']);
  });

  it('collects every problem', () => {
    const issues = issuesOf(`
services:
  - name: billing
    rules:
      ip: [10.0.0.0/33, 192.0.2.7/24]
      dkim: [{ domain: "bad domain", selector: s1 }]
      provider: sendgird
  - name: billing
    colour: blue
    rules: {}
  - team: nobody
    rules:
      spf: [-bounces-.example.com]
`);
    expect(issues).toContain('Service "billing" (#1), rule ip[0]: invalid CIDR "10.0.0.0/33"');
    expect(issues).toContainEqual(
      expect.stringMatching(
        /^Service "billing" \(#1\), rule ip\[1\]: invalid CIDR "192.0.2.7\/24": the address has bits set past the \/24 prefix$/,
      ),
    );
    expect(issues).toContain(
      'Service "billing" (#1), rule dkim[0].domain: invalid DKIM domain "bad domain"',
    );
    expect(issues).toContainEqual(
      expect.stringMatching(
        /^Service "billing" \(#1\), rule provider\[0\]: unknown provider "sendgird" \(known: .*sendgrid.*\)$/,
      ),
    );
    expect(issues).toContainEqual('Service "billing" (#2): unknown field "colour"');
    expect(issues).toContain(
      'Service "billing" (#2), field rules: no rules, so the service can never match',
    );
    expect(issues).toContain('Service "billing" (#2), field name: duplicate service name');
    expect(issues).toContainEqual('Service #3, field name: missing');
    expect(issues).toContain('Service #3, rule spf[0]: invalid SPF domain "-bounces-.example.com"');
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('services:\n  - name: billing\n    rules: [unclosed\n');
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatch(/^Line \d+, column \d+: /);
  });

  it('names the source in the error message', () => {
    expect(() => parseCatalog('services: 3', { source: 'services.yaml' })).toThrow(
      /^Invalid service catalog services.yaml: Catalog, field services: /,
    );
  });

  it('accepts IPv4-mapped and single-address rules', () => {
    const catalog = parseCatalog(`
services:
  - name: relay
    rules:
      ip: ["::ffff:192.0.2.0/120", 198.51.100.7, "2001:db8::1"]
`);
    expect(catalog.services[0].rules.ip).toHaveLength(3);
  });
});

describe('validateCatalog', () => {
  it('validates an already parsed value', () => {
    const result = validateCatalog({
      services: [{ name: 'x', rules: { ptr: 'mail.example.com' } }],
    });
    expect(result.ok).toBe(true);
  });

  it('rejects a value of the wrong shape', () => {
    const result = validateCatalog(['not', 'a', 'catalog']);
    expect(result.ok).toBe(false);
  });
});

describe('serializeCatalog', () => {
  it('round-trips through parseCatalog', () => {
    const catalog = parseCatalog(EXAMPLE);
    const text = serializeCatalog(catalog);
    expect(parseCatalog(text)).toEqual(catalog);
  });

  it('writes rule lists inline', () => {
    const text = serializeCatalog(parseCatalog(EXAMPLE));
    expect(text).toContain('ip: [ 203.0.113.0/24, 2001:db8:1::/48 ]');
    expect(text).toContain('provider: sendgrid');
    expect(text).not.toContain('team: null');
  });
});
