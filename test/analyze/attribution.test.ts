import { describe, expect, it } from 'vitest';

import {
  attributeSource,
  compileCatalog,
  type SourceEvidence,
} from '../../src/analyze/attribution.js';
import { parseCatalog } from '../../src/analyze/catalog.js';

const CATALOG = parseCatalog(`
services:
  - name: billing
    rules:
      ip: [203.0.113.0/24, 2001:db8:1::/48]
      ptr: [.mail.billing.example.com]
      dkim: [{ domain: billing.example.com, selector: s1 }]
      spf: [bounces.billing.example.com]
      header_from: [billing.example.com]
  - name: billing-canary
    rules:
      ip: [203.0.113.128/25]
  - name: marketing
    rules:
      provider: sendgrid
      header_from: news.example.com
  - name: newsletters
    rules:
      provider: sendgrid
  - name: corporate
    rules:
      dkim: [example.com, { domain: example.com, selector: google }]
      provider: google-workspace
      header_from: example.com
  - name: support
    rules:
      spf: [example.com]
      ip: ["::ffff:198.51.100.0/120"]
`);

function source(overrides: Partial<SourceEvidence>): SourceEvidence {
  return {
    ip: null,
    ptr: null,
    headerFrom: null,
    envelopeFrom: null,
    dkim: [],
    spf: [],
    ...overrides,
  };
}

describe('attributeSource', () => {
  it.each([
    {
      name: 'IPv4 range',
      source: source({ ip: '203.0.113.9' }),
      expected: { service: 'billing', rule: 'ip 203.0.113.0/24', confidence: 'high' },
    },
    {
      name: 'longest prefix',
      source: source({ ip: '203.0.113.200' }),
      expected: { service: 'billing-canary', rule: 'ip 203.0.113.128/25', confidence: 'high' },
    },
    {
      name: 'IPv6 range',
      source: source({ ip: '2001:db8:1:ff::25' }),
      expected: { service: 'billing', rule: 'ip 2001:db8:1::/48', confidence: 'high' },
    },
    {
      name: 'IPv4-mapped source',
      source: source({ ip: '::ffff:203.0.113.9' }),
      expected: { service: 'billing', rule: 'ip 203.0.113.0/24', confidence: 'high' },
    },
    {
      name: 'IPv4-mapped rule',
      source: source({ ip: '198.51.100.20' }),
      expected: { service: 'support', rule: 'ip ::ffff:198.51.100.0/120', confidence: 'high' },
    },
    {
      name: 'DKIM domain and selector',
      source: source({
        dkim: [{ domain: 'billing.example.com', selector: 's1', result: 'pass' }],
      }),
      expected: { service: 'billing', rule: 'dkim d=billing.example.com s=s1', confidence: 'high' },
    },
    {
      name: 'selector over domain',
      source: source({ dkim: [{ domain: 'example.com', selector: 'google', result: 'pass' }] }),
      expected: { service: 'corporate', rule: 'dkim d=example.com s=google', confidence: 'high' },
    },
    {
      name: 'DKIM domain only',
      source: source({ dkim: [{ domain: 'Example.com', selector: 'other', result: 'pass' }] }),
      expected: { service: 'corporate', rule: 'dkim d=example.com', confidence: 'medium' },
    },
    {
      name: 'SPF domain and subdomain',
      source: source({ spf: [{ domain: 'em7.bounces.billing.example.com', result: 'pass' }] }),
      expected: {
        service: 'billing',
        rule: 'spf bounces.billing.example.com',
        confidence: 'medium',
      },
    },
    {
      name: 'longest SPF domain',
      source: source({
        spf: [{ domain: 'bounces.billing.example.com', result: 'pass' }],
        headerFrom: 'example.com',
      }),
      expected: {
        service: 'billing',
        rule: 'spf bounces.billing.example.com',
        confidence: 'medium',
      },
    },
    {
      name: 'PTR suffix',
      source: source({ ptr: 'out1.mail.billing.example.com' }),
      expected: { service: 'billing', rule: 'ptr .mail.billing.example.com', confidence: 'medium' },
    },
    {
      name: 'provider with header_from',
      source: source({
        dkim: [{ domain: 'sendgrid.net', selector: 'smtpapi', result: 'pass' }],
        headerFrom: 'news.example.com',
      }),
      expected: { service: 'marketing', rule: 'provider sendgrid', confidence: 'low' },
    },
    {
      name: 'provider tie by file order',
      source: source({ dkim: [{ domain: 'sendgrid.net', selector: 'smtpapi', result: 'pass' }] }),
      expected: { service: 'marketing', rule: 'provider sendgrid', confidence: 'low' },
    },
    {
      name: 'header_from only',
      source: source({ headerFrom: 'invoices.billing.example.com' }),
      expected: { service: 'billing', rule: 'header_from billing.example.com', confidence: 'low' },
    },
    {
      name: 'failing SPF on a service bounce domain',
      source: source({
        ip: '192.0.2.44',
        spf: [{ domain: 'bounces.billing.example.com', result: 'softfail' }],
      }),
      expected: { service: 'billing', rule: 'spf bounces.billing.example.com', confidence: 'low' },
    },
  ])('matches $name', ({ source: evidence, expected }) => {
    const attribution = attributeSource(evidence, CATALOG);
    expect(attribution.kind).toBe('service');
    expect(attribution).toMatchObject(expected);
  });

  it('ranks an IP range above a DKIM selector', () => {
    const attribution = attributeSource(
      source({
        ip: '198.51.100.3',
        dkim: [{ domain: 'billing.example.com', selector: 's1', result: 'pass' }],
      }),
      CATALOG,
    );
    expect(attribution).toMatchObject({ service: 'support', ruleKind: 'ip' });
  });

  it('ignores a failing DKIM signature', () => {
    const attribution = attributeSource(
      source({ dkim: [{ domain: 'billing.example.com', selector: 's1', result: 'fail' }] }),
      CATALOG,
    );
    expect(attribution.kind).toBe('unattributed');
  });

  it('breaks a tie by the number of rule kinds', () => {
    const catalog = parseCatalog(`
services:
  - name: first
    rules:
      header_from: example.org
  - name: second
    rules:
      header_from: example.org
      provider: mailgun
`);
    const attribution = attributeSource(
      source({
        headerFrom: 'example.org',
        dkim: [{ domain: 'mailgun.org', selector: 'k1', result: 'pass' }],
      }),
      catalog,
    );
    expect(attribution).toMatchObject({ service: 'second', ruleKind: 'provider' });
  });

  it('falls back to a known provider', () => {
    const attribution = attributeSource(
      source({
        ip: '54.240.8.1',
        ptr: 'a8-1.smtp-out.amazonses.com',
        dkim: [{ domain: 'amazonses.com', selector: 'x', result: 'pass' }],
      }),
      CATALOG,
    );
    expect(attribution).toEqual({
      kind: 'provider',
      provider: 'amazon-ses',
      providerName: 'Amazon SES',
      rule: 'provider amazon-ses (ptr a8-1.smtp-out.amazonses.com, dkim d=amazonses.com)',
      confidence: 'high',
    });
  });

  it('rates a provider seen only in the envelope-from low', () => {
    const attribution = attributeSource(source({ envelopeFrom: 'x@bounces.mailjet.com' }), CATALOG);
    expect(attribution).toMatchObject({ kind: 'provider', provider: 'mailjet', confidence: 'low' });
  });

  it('leaves an unknown source unattributed', () => {
    const attribution = attributeSource(
      source({
        ip: '192.0.2.1',
        headerFrom: 'example.net',
        spf: [{ domain: 'example.net', result: 'fail' }],
      }),
      CATALOG,
    );
    expect(attribution).toEqual({ kind: 'unattributed', rule: null, confidence: null });
  });

  it('ignores an invalid source IP', () => {
    expect(attributeSource(source({ ip: 'not-an-ip' }), CATALOG).kind).toBe('unattributed');
  });

  it('accepts a compiled matcher', () => {
    const matcher = compileCatalog(CATALOG);
    expect(matcher.attribute(source({ ip: '203.0.113.1' }))).toMatchObject({ service: 'billing' });
    expect(attributeSource(source({ ip: '203.0.113.1' }), matcher)).toMatchObject({
      service: 'billing',
    });
  });
});
