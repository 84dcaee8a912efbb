import { describe, expect, it } from 'vitest';

import { parseDmarcRecord } from '../../src/analyze/policy.js';
import { whatIf, type ReplayRow } from '../../src/analyze/what-if.js';

const ROWS: ReplayRow[] = [
  // billing signs with its own domain: passes under any policy.
  {
    service: 'billing',
    headerFrom: 'example.com',
    count: 1000,
    dkim: [{ domain: 'example.com', result: 'pass' }],
    spf: [{ domain: 'sendgrid.net', result: 'pass' }],
    evalDkim: 'pass',
    evalSpf: 'fail',
  },
  // marketing signs with a subdomain: passes relaxed, fails strict.
  {
    service: 'marketing',
    headerFrom: 'news.example.com',
    count: 400,
    dkim: [{ domain: 'mail.news.example.com', result: 'pass' }],
    spf: [{ domain: 'mcsv.net', result: 'pass' }],
    evalDkim: 'pass',
    evalSpf: 'fail',
  },
  // support still signs with the provider's domain.
  {
    service: 'support',
    headerFrom: 'example.com',
    count: 100,
    dkim: [{ domain: 'zendesk.com', result: 'pass' }],
    spf: [{ domain: 'zendesk.com', result: 'pass' }],
    evalDkim: 'fail',
    evalSpf: 'fail',
  },
  // Spoofed mail.
  {
    service: '',
    headerFrom: 'example.com',
    count: 60,
    dkim: [],
    spf: [{ domain: 'example.com', result: 'fail' }],
    evalDkim: 'fail',
    evalSpf: 'fail',
  },
  // Forwarded mail that receivers delivered anyway.
  {
    service: '',
    headerFrom: 'example.com',
    count: 20,
    dkim: [{ domain: 'example.com', result: 'fail' }],
    spf: [{ domain: 'lists.example.net', result: 'pass' }],
    evalDkim: 'fail',
    evalSpf: 'fail',
    reasons: [{ type: 'mailing_list', comment: null }],
  },
  // Another domain's mail, not replayed.
  {
    service: '',
    headerFrom: 'example.org',
    count: 5,
    dkim: [],
    spf: [],
    evalDkim: 'fail',
    evalSpf: 'fail',
  },
];

function service(result: ReturnType<typeof whatIf>, name: string) {
  const counts = result.services.find((entry) => entry.service === name);
  if (!counts) throw new Error(`no counts for ${name}`);
  return counts;
}

describe('whatIf', () => {
  it('replays p=reject', () => {
    const result = whatIf(ROWS, parseDmarcRecord('v=DMARC1; p=reject', 'example.com'));

    expect(service(result, 'billing')).toMatchObject({ messages: 1000, pass: 1000, reject: 0 });
    expect(service(result, 'marketing')).toMatchObject({ pass: 400, reject: 0 });
    expect(service(result, 'support')).toMatchObject({ pass: 0, reject: 100, quarantine: 0 });
    expect(result.unattributed).toMatchObject({ messages: 80, reject: 60, overridden: 20 });
    expect(result.total).toMatchObject({ messages: 1580, pass: 1400, reject: 160, overridden: 20 });
    expect(result.otherDomainMessages).toBe(5);
  });

  it('lists services by name', () => {
    const result = whatIf(ROWS, parseDmarcRecord('v=DMARC1; p=none', 'example.com'));
    expect(result.services.map((entry) => entry.service)).toEqual([
      'billing',
      'marketing',
      'support',
    ]);
    expect(service(result, 'support')).toMatchObject({ none: 100, quarantine: 0, reject: 0 });
  });

  it('applies sp to subdomains', () => {
    const result = whatIf(
      ROWS,
      parseDmarcRecord('v=DMARC1; p=reject; sp=quarantine; adkim=s', 'example.com'),
    );
    expect(service(result, 'marketing')).toMatchObject({ pass: 0, quarantine: 400, reject: 0 });
    expect(service(result, 'billing').pass).toBe(1000);
  });

  it('reports expected counts under pct', () => {
    const result = whatIf(ROWS, parseDmarcRecord('v=DMARC1; p=reject; pct=25', 'example.com'));
    expect(service(result, 'support')).toMatchObject({ reject: 25, quarantine: 75 });
    expect(result.unattributed).toMatchObject({ reject: 15, quarantine: 45 });
    expect(result.notes.join(' ')).toMatch(/expected values/);
  });

  it('steps down under t=y', () => {
    const result = whatIf(ROWS, parseDmarcRecord('v=DMARC1; p=reject; t=y', 'example.com'));
    expect(service(result, 'support')).toMatchObject({ reject: 0, quarantine: 100 });
    expect(result.notes.join(' ')).toMatch(/t=y/);
  });

  it('can ignore overrides', () => {
    const result = whatIf(ROWS, parseDmarcRecord('v=DMARC1; p=reject', 'example.com'), {
      honorOverrides: false,
    });
    expect(result.unattributed).toMatchObject({ overridden: 0, reject: 80 });
  });

  it('trusts an evaluated pass only in relaxed mode', () => {
    const rows: ReplayRow[] = [
      {
        service: 'legacy',
        headerFrom: 'example.com',
        count: 10,
        dkim: [],
        spf: [],
        evalDkim: 'pass',
        evalSpf: null,
      },
    ];
    const relaxed = whatIf(rows, parseDmarcRecord('v=DMARC1; p=reject', 'example.com'));
    expect(relaxed.total.pass).toBe(10);

    const strict = whatIf(rows, parseDmarcRecord('v=DMARC1; p=reject; adkim=s', 'example.com'));
    expect(strict.total).toMatchObject({ pass: 0, reject: 10 });
  });
});
