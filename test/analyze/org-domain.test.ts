import { describe, expect, it } from 'vitest';

import {
  alignmentLevel,
  dkimAlignment,
  domainOfAddress,
  isAligned,
  normalizeDomain,
  organizationalDomain,
  parseAlignmentMode,
  recordAlignment,
  spfAlignment,
} from '../../src/analyze/org-domain.js';

describe('organizationalDomain', () => {
  it.each([
    ['example.com', 'example.com'],
    ['mail.billing.example.com', 'example.com'],
    ['Mail.Example.COM.', 'example.com'],
    ['shop.example.co.uk', 'example.co.uk'],
    ['a.b.example.com.au', 'example.com.au'],
    ['bounces.sendgrid.net', 'sendgrid.net'],
  ])('maps %s to %s', (domain, expected) => {
    expect(organizationalDomain(domain)).toBe(expected);
  });

  it('ignores private suffixes', () => {
    // github.io is in the private section of the list. With that section, the result would be the tenant.
    expect(organizationalDomain('team.github.io')).toBe('github.io');
    expect(organizationalDomain('app1.herokuapp.com')).toBe('herokuapp.com');
  });

  it('returns null for a bare public suffix', () => {
    expect(organizationalDomain('co.uk')).toBeNull();
    expect(organizationalDomain('com')).toBeNull();
  });

  it('returns null for empty input and IP addresses', () => {
    expect(organizationalDomain('')).toBeNull();
    expect(organizationalDomain(null)).toBeNull();
    expect(organizationalDomain('192.0.2.1')).toBeNull();
  });
});

describe('normalizeDomain and domainOfAddress', () => {
  it('trims, lowercases and drops the root dot', () => {
    expect(normalizeDomain('  Example.COM. ')).toBe('example.com');
    expect(normalizeDomain('   ')).toBeNull();
  });

  it('takes the domain of an envelope address', () => {
    expect(domainOfAddress('bounces+123-ab=example.com@em42.Example.com')).toBe('em42.example.com');
    expect(domainOfAddress('example.org')).toBe('example.org');
    expect(domainOfAddress(null)).toBeNull();
  });
});

describe('alignment', () => {
  it.each([
    ['example.com', 'example.com', 'strict'],
    ['mail.example.com', 'example.com', 'relaxed'],
    ['example.com', 'news.example.com', 'relaxed'],
    ['a.example.com', 'b.example.com', 'relaxed'],
    ['sendgrid.net', 'example.com', 'none'],
    ['example.co.uk', 'other.co.uk', 'none'],
    ['co.uk', 'co.uk', 'strict'],
    ['example.com', null, 'none'],
  ] as const)('rates d=%s against From %s as %s', (auth, from, expected) => {
    expect(alignmentLevel(auth, from)).toBe(expected);
  });

  it('applies the mode', () => {
    expect(isAligned('mail.example.com', 'example.com', 'r')).toBe(true);
    expect(isAligned('mail.example.com', 'example.com', 's')).toBe(false);
    expect(isAligned('EXAMPLE.com', 'example.com', 's')).toBe(true);
  });

  it('parses adkim and aspf values', () => {
    expect(parseAlignmentMode('s')).toBe('s');
    expect(parseAlignmentMode(' S ')).toBe('s');
    expect(parseAlignmentMode('r')).toBe('r');
    expect(parseAlignmentMode(null)).toBe('r');
  });
});

describe('dkimAlignment', () => {
  it('counts passing signatures only', () => {
    const result = dkimAlignment(
      [
        { domain: 'example.com', result: 'fail' },
        { domain: 'sendgrid.net', result: 'pass' },
      ],
      'example.com',
    );
    expect(result).toEqual({ relaxed: false, strict: false, domain: 'sendgrid.net' });
  });

  it('prefers a strictly aligned signature', () => {
    const result = dkimAlignment(
      [
        { domain: 'mail.example.com', result: 'pass' },
        { domain: 'example.com', result: 'PASS' },
      ],
      'example.com',
    );
    expect(result).toEqual({ relaxed: true, strict: true, domain: 'example.com' });
  });

  it('reports relaxed alignment of a subdomain signature', () => {
    const result = dkimAlignment([{ domain: 'mail.example.com', result: 'pass' }], 'example.com');
    expect(result).toEqual({ relaxed: true, strict: false, domain: 'mail.example.com' });
  });

  it('handles no signature', () => {
    expect(dkimAlignment([], 'example.com')).toEqual({
      relaxed: false,
      strict: false,
      domain: null,
    });
  });
});

describe('spfAlignment', () => {
  it('aligns the MAIL FROM domain', () => {
    const result = spfAlignment(
      [{ domain: 'bounces.example.com', scope: 'mfrom', result: 'pass' }],
      'example.com',
    );
    expect(result.relaxed).toBe(true);
    expect(result.strict).toBe(false);
  });

  it('ignores a helo result when a mfrom result exists', () => {
    const result = spfAlignment(
      [
        { domain: 'example.com', scope: 'helo', result: 'pass' },
        { domain: 'amazonses.com', scope: 'mfrom', result: 'pass' },
      ],
      'example.com',
    );
    expect(result).toEqual({ relaxed: false, strict: false, domain: 'amazonses.com' });
  });

  it('uses a helo result when it is the only one', () => {
    const result = spfAlignment(
      [{ domain: 'example.com', scope: 'helo', result: 'pass' }],
      'example.com',
    );
    expect(result.strict).toBe(true);
  });

  it('treats a missing scope as MAIL FROM', () => {
    const result = spfAlignment(
      [{ domain: 'example.com', scope: null, result: 'pass' }],
      'example.com',
    );
    expect(result.strict).toBe(true);
  });

  it('does not align a failing result', () => {
    const result = spfAlignment(
      [{ domain: 'example.com', scope: null, result: 'softfail' }],
      'example.com',
    );
    expect(result.relaxed).toBe(false);
  });
});

describe('recordAlignment', () => {
  it('recomputes both mechanisms', () => {
    const alignment = recordAlignment({
      headerFrom: 'example.com',
      dkim: [{ domain: 'example.com', result: 'pass' }],
      spf: [{ domain: 'sendgrid.net', scope: 'mfrom', result: 'pass' }],
    });
    expect(alignment.dkim.strict).toBe(true);
    expect(alignment.spf.relaxed).toBe(false);
    expect(alignment.spf.domain).toBe('sendgrid.net');
  });
});
