import { describe, expect, it } from 'vitest';

import { getProvider } from '../../src/analyze/providers.js';
import { parseDmarcRecord } from '../../src/analyze/policy.js';
import {
  DEFAULT_THRESHOLDS,
  nextPolicyStep,
  recommend,
  type DomainEvidence,
  type Recommendation,
  type SourceStats,
} from '../../src/analyze/recommendations.js';

const FIRST = new Date('2026-03-01T00:00:00Z');
const LAST = new Date('2026-03-22T00:00:00Z'); // 21 days

function row(service: string, headerFrom: string, stats: Partial<SourceStats>): SourceStats {
  const messages = stats.messages ?? 1000;
  const dmarcPass = stats.dmarcPass ?? messages;
  return {
    service,
    headerFrom,
    provider: null,
    messages,
    dmarcPass,
    dkimAligned: dmarcPass,
    spfAligned: dmarcPass,
    strictAligned: 0,
    reporters: 3,
    daysSeen: 21,
    firstSeen: FIRST,
    lastSeen: LAST,
    ...stats,
  };
}

function domain(
  record: string,
  rows: SourceStats[],
  overrides: Partial<DomainEvidence> = {},
): DomainEvidence {
  const policy = parseDmarcRecord(record, 'example.com');
  return {
    domain: 'example.com',
    policy: {
      p: policy.p,
      sp: policy.sp,
      np: policy.np,
      pct: policy.pct,
      testing: policy.t,
      adkim: policy.adkim,
      aspf: policy.aspf,
      fo: policy.fo,
    },
    reporters: 4,
    firstSeen: FIRST,
    lastSeen: LAST,
    rows,
    ...overrides,
  };
}

interface Expected {
  kind: Recommendation['kind'];
  service?: string;
  severity?: Recommendation['severity'];
  evidence?: Record<string, number>;
  dns_record?: string;
  summary?: RegExp;
}

const SENDGRID = getProvider('sendgrid')!;

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const SCENARIOS: { name: string; input: DomainEvidence; expected: Expected[] }[] = [
  {
    name: 'ready for quarantine',
    input: domain('v=DMARC1; p=none', [
      row('billing', 'example.com', { messages: 2000, dmarcPass: 1990 }),
      row('marketing', 'news.example.com', { messages: 1000, dmarcPass: 1000 }),
      row('', 'example.com', { messages: 5, dmarcPass: 0 }),
    ]),
    expected: [
      {
        kind: 'step-up-policy',
        severity: 'warning',
        dns_record: '_dmarc.example.com. TXT "v=DMARC1; p=quarantine"',
        evidence: {
          days_observed: 21,
          reporters: 4,
          known_services: 2,
          known_messages: 3000,
          lowest_pass_rate: 99.5,
          would_quarantine: 15,
          would_reject: 0,
          would_block_known: 10,
          would_block_unattributed: 5,
          now_quarantine: 0,
        },
        summary: /move from p=none to p=quarantine.*Keep your rua\/ruf tags/,
      },
    ],
  },
  {
    name: 'not ready: one service fails DKIM alignment',
    input: domain('v=DMARC1; p=none', [
      row('billing', 'example.com', {}),
      row('marketing', 'news.example.com', {
        provider: 'sendgrid',
        messages: 1000,
        dmarcPass: 700,
        dkimAligned: 0,
        failures: { 'dkim-provider-domain': 300 },
      }),
    ]),
    expected: [
      {
        kind: 'fix-service',
        service: 'marketing',
        severity: 'warning',
        evidence: {
          messages: 1000,
          dmarc_pass: 700,
          pass_rate: 70,
          dkim_aligned: 0,
          'failures_dkim-provider-domain': 300,
        },
        dns_record: '',
        summary: new RegExp(
          `Main cause: DKIM signed with the provider’s domain instead of ours \\(300 messages\\)\\. Fix: ${escape(SENDGRID.fixes.dkim)}$`,
        ),
      },
    ],
  },
  {
    name: 'ready for reject, with strict alignment',
    input: domain('v=DMARC1; p=quarantine; fo=1', [
      row('billing', 'example.com', { strictAligned: 1000 }),
      row('support', 'help.example.com', { messages: 200, strictAligned: 200 }),
    ]),
    expected: [
      {
        kind: 'step-up-policy',
        severity: 'info',
        dns_record: '_dmarc.example.com. TXT "v=DMARC1; p=reject; fo=1"',
        evidence: { would_reject: 0, would_quarantine: 0 },
      },
      {
        kind: 'strict-alignment',
        dns_record: '_dmarc.example.com. TXT "v=DMARC1; p=quarantine; adkim=s; aspf=s; fo=1"',
        evidence: { lowest_strict_rate: 100 },
      },
    ],
  },
  {
    name: 'subdomains silent',
    input: domain('v=DMARC1; p=quarantine; pct=100', [
      row('billing', 'example.com', {
        dmarcPass: 950,
        failures: { 'spf-fail': 50, 'no-dkim': 50 },
      }),
    ]),
    expected: [
      {
        kind: 'fix-service',
        service: 'billing',
        severity: 'critical',
        summary: /p=quarantine already quarantines or rejects.*Main cause: (sending IP|no DKIM)/,
      },
      {
        kind: 'set-subdomain-policy',
        severity: 'info',
        dns_record:
          '_dmarc.example.com. TXT "v=DMARC1; p=quarantine; sp=reject; np=reject; pct=100"',
        evidence: { subdomain_messages: 0, days_observed: 21 },
      },
    ],
  },
  {
    name: 'an unknown passing sender',
    input: domain('v=DMARC1; p=reject', [
      row('billing', 'example.com', {}),
      row('', 'news.example.com', {
        provider: 'mailgun',
        messages: 520,
        dmarcPass: 500,
        reporters: 2,
      }),
    ]),
    expected: [
      {
        kind: 'add-to-catalog',
        service: '',
        severity: 'info',
        evidence: { messages: 520, dmarc_pass: 500, reporters: 2 },
        summary:
          /via Mailgun passes DMARC.*rules header_from: news\.example\.com, provider: mailgun/,
      },
      {
        kind: 'spoofing',
        severity: 'info',
        evidence: { failing_messages: 20, delivered_messages: 0 },
        summary: /already quarantines or rejects/,
      },
    ],
  },
  {
    name: 'spoofing from unattributed sources',
    input: domain('v=DMARC1; p=none; sp=reject; np=reject', [
      row('billing', 'example.com', { messages: 100, dmarcPass: 60, failures: { 'spf-fail': 40 } }),
      row('', 'example.com', { messages: 1200, dmarcPass: 0 }),
      row('', 'pay.example.com', { messages: 300, dmarcPass: 0 }),
    ]),
    expected: [
      { kind: 'fix-service', service: 'billing', severity: 'warning', evidence: { pass_rate: 60 } },
      {
        kind: 'spoofing',
        severity: 'warning',
        evidence: { failing_messages: 1500, delivered_messages: 1200, header_from_domains: 2 },
        summary: /1,500 messages From example\.com, pay\.example\.com fail DMARC/,
      },
    ],
  },
  {
    name: 'too little data',
    input: domain('v=DMARC1; p=none', [row('billing', 'example.com', {})], {
      reporters: 1,
      lastSeen: new Date('2026-03-06T00:00:00Z'),
    }),
    expected: [
      {
        kind: 'wait-for-data',
        evidence: { days_observed: 5, reporters: 1 },
        summary: /wait for 14 days from 2 reporters/,
      },
    ],
  },
  {
    name: 'pct ramp',
    input: domain('v=DMARC1; p=quarantine; pct=25; sp=none', [
      row('billing', 'example.com', {}),
      row('', 'example.com', { messages: 400, dmarcPass: 0 }),
      row('', 'www.example.com', { messages: 100, dmarcPass: 0 }),
    ]),
    expected: [
      {
        kind: 'step-up-policy',
        dns_record: '_dmarc.example.com. TXT "v=DMARC1; p=quarantine; sp=none; pct=50"',
        evidence: { would_quarantine: 200, now_quarantine: 100, would_block_unattributed: 200 },
        summary: /raise pct from 25 to 50/,
      },
      {
        kind: 'spoofing',
        severity: 'warning',
        evidence: { failing_messages: 500, delivered_messages: 400 },
      },
    ],
  },
  {
    name: 'RFC 9990 testing mode',
    input: domain('v=DMARC1; p=quarantine; t=n; sp=reject; np=reject', [
      row('billing', 'example.com', {}),
    ]),
    expected: [
      {
        kind: 'step-up-policy',
        dns_record: '_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=reject; np=reject; t=y"',
        summary: /p=reject with t=y first: RFC 9990 receivers then apply quarantine/,
      },
    ],
  },
];

describe('recommend scenarios', () => {
  it.each(SCENARIOS)('$name', ({ input, expected }) => {
    const items = recommend([input]);

    expect(items.map((item) => item.kind).sort()).toEqual(expected.map((e) => e.kind).sort());
    for (const want of expected) {
      const item = items.find((candidate) => candidate.kind === want.kind)!;
      expect(item.domain).toBe('example.com');
      if (want.service !== undefined) expect(item.service).toBe(want.service);
      if (want.severity) expect(item.severity).toBe(want.severity);
      if (want.dns_record !== undefined) expect(item.dns_record).toBe(want.dns_record);
      if (want.evidence) expect(item.evidence).toMatchObject(want.evidence);
      if (want.summary) expect(item.summary).toMatch(want.summary);
    }
  });
});

describe('recommend', () => {
  it('sorts by domain, then severity', () => {
    // The rows keep header From example.com, so alpha.example's policy covers none of them.
    const other = { ...SCENARIOS[5].input, domain: 'Alpha.example' };
    const items = recommend([SCENARIOS[3].input, other]);
    expect(items.map((item) => [item.domain, item.severity])).toEqual([
      ['alpha.example', 'warning'],
      ['alpha.example', 'info'],
      ['example.com', 'critical'],
      ['example.com', 'info'],
    ]);
  });

  it('takes custom thresholds', () => {
    const input = SCENARIOS[1].input;
    const items = recommend([input], { minPassRate: 0.6 });
    expect(items.map((item) => item.kind)).toEqual(['step-up-policy']);
  });

  it('documents its defaults', () => {
    expect(DEFAULT_THRESHOLDS).toEqual({
      minPassRate: 0.98,
      minDaysObserved: 14,
      minReporters: 2,
      pctRamp: [10, 25, 50, 100],
      addToCatalogMinMessages: 10,
      spoofingMinMessages: 10,
    });
  });

  it('returns nothing for a domain without mail', () => {
    expect(recommend([domain('v=DMARC1; p=reject', [])])).toEqual([]);
  });
});

describe('nextPolicyStep', () => {
  const ramp = DEFAULT_THRESHOLDS.pctRamp;
  const step = (record: string) => {
    const next = nextPolicyStep(parseDmarcRecord(record, 'example.com'), ramp);
    return next && { p: next.p, pct: next.pct, t: next.t };
  };

  it.each([
    ['v=DMARC1; p=none', { p: 'quarantine', pct: null, t: null }],
    ['v=DMARC1; p=quarantine', { p: 'reject', pct: null, t: null }],
    ['v=DMARC1; p=reject', null],
    ['v=DMARC1; p=none; pct=100', { p: 'quarantine', pct: 10, t: null }],
    ['v=DMARC1; p=quarantine; pct=10', { p: 'quarantine', pct: 25, t: null }],
    ['v=DMARC1; p=quarantine; pct=60', { p: 'quarantine', pct: 100, t: null }],
    ['v=DMARC1; p=quarantine; pct=100', { p: 'reject', pct: 10, t: null }],
    ['v=DMARC1; p=reject; pct=50', { p: 'reject', pct: 100, t: null }],
    ['v=DMARC1; p=reject; pct=100', null],
    ['v=DMARC1; p=none; t=y', { p: 'quarantine', pct: null, t: 'y' }],
    ['v=DMARC1; p=quarantine; t=y', { p: 'quarantine', pct: null, t: 'n' }],
    ['v=DMARC1; p=quarantine; t=n', { p: 'reject', pct: null, t: 'y' }],
    ['v=DMARC1; p=reject; t=y', { p: 'reject', pct: null, t: 'n' }],
    ['v=DMARC1; p=reject; t=n', null],
  ])('steps %s', (record, expected) => {
    expect(step(record)).toEqual(expected);
  });
});
