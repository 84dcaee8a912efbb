import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ingestInput, processStoredInput } from '../../src/ingest/pipeline.js';
import type { AlertRun } from '../../src/notify/alerting.js';
import { DEFAULT_LIMITS } from '../../src/parse/limits.js';
import { saveMailboxConnection } from '../../src/store/alerts.js';
import { reopenQuarantinedInput } from '../../src/store/dashboard.js';
import { renderReportXml } from '../../src/demo/report-xml.js';
import {
  openTestRuntime,
  postgresAvailable,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';
import { startSmtpServer, type ReceivedMessage, type TestSmtpServer } from '../helpers/smtp.js';
import {
  ALERT_TO,
  buildReport,
  daysUpTo,
  ingestDays,
  onlyRule,
  setCatalog,
  testAlerting,
  TestClock,
  type SampleDay,
} from './history.js';

const kind: DatabaseKind = (await postgresAvailable()) ? 'postgres' : 'pglite';

let smtp: TestSmtpServer;

beforeAll(async () => {
  smtp = await startSmtpServer();
});

afterAll(async () => {
  await smtp?.close();
});

/** Runs alerting once and returns the run and the messages the SMTP server received for it. */
async function runOnce(alerting: ReturnType<typeof testAlerting>) {
  const before = smtp.messages.length;
  const run: AlertRun = await alerting.run();
  const messages = smtp.messages.slice(before);
  return { run, messages, subjects: messages.map((message) => message.mail.subject) };
}

function recipientsOf(messages: ReceivedMessage[]): string[] {
  return messages.flatMap((message) => message.recipients).sort();
}

const BILLING_CATALOG = `
services:
  - name: billing
    rules: { ip: [192.0.2.10] }
`;

function billingDays(days: string[], extra: (day: string) => SampleDay['sources'] = () => []) {
  return days.map((day) => ({
    day,
    sources: [{ ip: '192.0.2.10', count: 100, pass: true }, ...extra(day)],
  }));
}

describe('new-failing-source', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(runtime, BILLING_CATALOG);
    await ingestDays(runtime, billingDays(daysUpTo('2025-03-15', 15)));
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('opens, repeats when worse or after the cooldown, resolves once', async () => {
    const clock = new TestClock(new Date('2025-03-16T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('new-failing-source'),
      smtpUrl: smtp.url,
    });

    // Only catalog mail so far: nothing to report.
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestDays(runtime, [
      { day: '2025-03-16', sources: [{ ip: '203.0.113.9', count: 40, pass: false }] },
    ]);
    clock.advanceHours(1);
    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] example.com: new source 203.0.113.9 fails DMARC (40 messages, likely spoofing)',
    ]);
    expect(recipientsOf(opened.messages)).toEqual([ALERT_TO]);
    expect(opened.messages[0].mail.text).toContain('Under p=none receivers deliver this mail');

    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestDays(runtime, [
      {
        day: '2025-03-17',
        sources: [
          { ip: '203.0.113.9', count: 10, pass: false },
          { ip: '198.51.100.7', count: 25, pass: false },
        ],
      },
    ]);
    clock.set('2025-03-17T10:00:00Z');
    const worse = await runOnce(alerting);
    expect(worse.subjects).toEqual([
      '[dmarc-lens] Worse: example.com: 2 new sources fail DMARC (75 messages, likely spoofing)',
    ]);
    expect(worse.messages[0].mail.text).toContain('New since the last message: 198.51.100.7');

    // Still failing a week later: the cooldown of 168 hours has passed.
    clock.set('2025-03-24T11:00:00Z');
    const reminder = await runOnce(alerting);
    expect(reminder.subjects).toEqual([
      '[dmarc-lens] Still open: example.com: 2 unattributed sources fail DMARC (35 messages, likely spoofing)',
    ]);

    clock.set('2025-03-26T09:00:00Z');
    const resolved = await runOnce(alerting);
    expect(resolved.subjects).toEqual([
      '[dmarc-lens] Resolved: example.com: 2 unattributed sources fail DMARC (35 messages, likely spoofing)',
    ]);
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    const { rows } = await runtime.db.pool.query(
      `SELECT state, resolution, notified_members FROM alerts WHERE rule = 'new-failing-source'`,
    );
    expect(rows).toEqual([
      {
        state: 'resolved',
        resolution: 'cleared',
        notified_members: expect.arrayContaining(['203.0.113.9', '198.51.100.7']),
      },
    ]);
  });

  it('leaves failing sources below minMessages out', async () => {
    await ingestDays(runtime, [
      { day: '2025-04-01', sources: [{ ip: '203.0.113.77', count: 4, pass: false }] },
    ]);
    const clock = new TestClock(new Date('2025-04-02T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('new-failing-source'),
      smtpUrl: smtp.url,
    });
    expect((await runOnce(alerting)).subjects).toEqual([]);
  });
});

describe('new-passing-source', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(runtime, BILLING_CATALOG);
    await ingestDays(
      runtime,
      billingDays(daysUpTo('2025-03-15', 6), () => [
        { ip: '198.51.100.20', count: 15, pass: true },
      ]),
    );
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('asks for a catalog entry, then resolves when one claims the source', async () => {
    const clock = new TestClock(new Date('2025-03-16T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('new-passing-source', { recipients: ['catalog-owners@example.com'] }),
      smtpUrl: smtp.url,
    });

    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] example.com: new source 198.51.100.20 passes DMARC but no catalog service claims it',
    ]);
    // The rule's own recipients replace ALERT_TO.
    expect(recipientsOf(opened.messages)).toEqual(['catalog-owners@example.com']);
    expect(opened.messages[0].mail.text).toContain('Add a service for it to the catalog');

    clock.advanceHours(2);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await setCatalog(
      runtime,
      `${BILLING_CATALOG}
  - name: helpdesk
    rules: { ip: [198.51.100.20] }
`,
    );
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: example.com: new source 198.51.100.20 passes DMARC but no catalog service claims it',
    ]);
  });
});

describe('service-pass-rate', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com,example.org' });
    await setCatalog(
      runtime,
      `
services:
  - name: password-resets
    contact: resets-team@example.com
    rules: { ip: [192.0.2.20] }
  - name: billing
    rules: { ip: [192.0.2.10] }
  - name: newsletter
    rules: { ip: [192.0.2.40] }
`,
    );
    const good = daysUpTo('2025-03-11', 20);
    const bad = daysUpTo('2025-03-15', 4);
    await ingestDays(runtime, [
      ...good.map((day) => ({
        day,
        sources: [
          { ip: '192.0.2.20', count: 100, pass: true },
          { ip: '192.0.2.10', count: 100, pass: true },
        ],
      })),
      ...bad.map((day) => ({
        day,
        sources: [
          { ip: '192.0.2.20', count: 41, pass: true },
          { ip: '192.0.2.20', count: 59, pass: false },
          { ip: '192.0.2.10', count: 100, pass: true },
        ],
      })),
      ...good.map((day) => ({
        day,
        domain: 'example.org',
        sources: [{ ip: '192.0.2.40', count: 50, pass: true }],
      })),
      ...bad.map((day) => ({
        day,
        domain: 'example.org',
        sources: [
          { ip: '192.0.2.40', count: 85, pass: true },
          { ip: '192.0.2.40', count: 15, pass: false },
        ],
      })),
    ]);
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('alerts below threshold or baseline, repeats, gets worse, resolves', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('service-pass-rate', { services: { newsletter: { threshold: 80 } } }),
      smtpUrl: smtp.url,
    });

    const opened = await runOnce(alerting);
    expect([...new Set(opened.subjects)].sort()).toEqual([
      '[dmarc-lens] example.com: password-resets DMARC pass rate fell to 41% (threshold 98%)',
      '[dmarc-lens] example.org: newsletter DMARC pass rate fell to 85% (baseline 100%, threshold 80%)',
    ]);
    // The service owner from the catalog gets the password-resets alert too.
    const resets = opened.messages.filter((m) => m.mail.subject?.includes('password-resets'));
    expect(recipientsOf(resets)).toEqual([ALERT_TO, 'resets-team@example.com'].sort());
    expect(resets[0].mail.text).toContain('DKIM passes for d=mailer.example.net');
    expect(opened.subjects.some((subject) => subject?.includes('billing'))).toBe(false);

    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    // A day later the cooldown of 24 hours has passed and both are still open. The first bad
    // day has moved from the window into the baseline.
    clock.set('2025-03-16T10:00:00Z');
    const reminder = await runOnce(alerting);
    expect([...new Set(reminder.subjects)].sort()).toEqual([
      '[dmarc-lens] Still open: example.com: password-resets DMARC pass rate fell to 41% (threshold 98%)',
      '[dmarc-lens] Still open: example.org: newsletter DMARC pass rate fell to 85% (baseline 98.6%, threshold 80%)',
    ]);

    await ingestDays(runtime, [
      { day: '2025-03-16', sources: [{ ip: '192.0.2.20', count: 100, pass: false }] },
    ]);
    clock.advanceHours(1);
    const worse = await runOnce(alerting);
    expect([...new Set(worse.subjects)]).toEqual([
      '[dmarc-lens] Worse: example.com: password-resets DMARC pass rate fell to 30.8% (threshold 98%)',
    ]);

    await ingestDays(
      runtime,
      daysUpTo('2025-03-21', 5).flatMap((day) => [
        { day, sources: [{ ip: '192.0.2.20', count: 100, pass: true }] },
        { day, domain: 'example.org', sources: [{ ip: '192.0.2.40', count: 50, pass: true }] },
      ]),
    );
    clock.set('2025-03-21T09:00:00Z');
    const resolved = await runOnce(alerting);
    expect([...new Set(resolved.subjects)].sort()).toEqual([
      '[dmarc-lens] Resolved: example.com: password-resets DMARC pass rate is back to 100% (threshold 98%)',
      '[dmarc-lens] Resolved: example.org: newsletter DMARC pass rate is back to 100% (threshold 80%)',
    ]);
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);
  });
});

describe('unattributed-spike', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(runtime, BILLING_CATALOG);
    await ingestDays(
      runtime,
      billingDays(daysUpTo('2025-03-14', 14), () => [
        { ip: '203.0.113.9', count: 20, pass: false },
      ]),
    );
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('alerts on a day far above the average and resolves after it', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('unattributed-spike'),
      smtpUrl: smtp.url,
    });
    // A steady 20 failing messages a day is no spike.
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestDays(runtime, [
      {
        day: '2025-03-15',
        sources: [
          { ip: '203.0.113.9', count: 20, pass: false },
          { ip: '203.0.113.50', count: 280, pass: false },
        ],
      },
    ]);
    clock.advanceHours(2);
    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] example.com: failing mail from unattributed sources jumped to 300 messages on 2025-03-15 (15.0× the daily average of 20)',
    ]);
    expect(opened.messages[0].mail.text).toMatch(/203\.0\.113\.50\s+2025-03-15\s+280/);

    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    // The baseline now contains the spike day too: (12 × 20 + 300) / 13 days.
    clock.set('2025-03-18T09:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: example.com: failing unattributed mail is back to 0 messages a day at most (average 42)',
    ]);
  });
});

describe('policy-step', () => {
  let runtime: TestRuntime;
  const corp = (day: string, p = 'none', pass = true): SampleDay[] =>
    ['google.com', 'Outlook.com'].map((reporter) => ({
      day,
      reporter,
      p,
      sources: [{ ip: '192.0.2.30', count: 100, pass }],
    }));

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(runtime, 'services:\n  - name: corporate\n    rules: { ip: [192.0.2.30] }\n');
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('waits for coverage, announces the step, then the next one, then resolves', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('policy-step'),
      smtpUrl: smtp.url,
    });

    // Ten days of reports are not enough for a policy change.
    await ingestDays(
      runtime,
      daysUpTo('2025-03-14', 10).flatMap((day) => corp(day)),
    );
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestDays(
      runtime,
      daysUpTo('2025-03-04', 12).flatMap((day) => corp(day)),
    );
    clock.advanceHours(1);
    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] example.com: ready for the next DMARC policy step (p=quarantine)',
    ]);
    expect(opened.messages[0].mail.text).toContain(
      'Publish this DNS record: _dmarc.example.com. TXT "v=DMARC1; p=quarantine;',
    );

    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    // The domain published p=quarantine: the next step is p=reject.
    await ingestDays(runtime, corp('2025-03-15', 'quarantine'));
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Changed: example.com: ready for the next DMARC policy step (p=reject)',
    ]);

    // The service starts failing: no step is safe any more.
    await ingestDays(runtime, corp('2025-03-16', 'quarantine', false));
    clock.set('2025-03-16T12:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: example.com: ready for the next DMARC policy step (p=reject)',
    ]);
  });
});

describe('recommendation-change', () => {
  let runtime: TestRuntime;
  const corp = (day: string, sp: string | null = null): SampleDay[] =>
    ['google.com', 'Outlook.com'].map((reporter) => ({
      day,
      reporter,
      sp,
      sources: [{ ip: '192.0.2.30', count: 100, pass: true }],
    }));

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(runtime, 'services:\n  - name: corporate\n    rules: { ip: [192.0.2.30] }\n');
    await ingestDays(
      runtime,
      daysUpTo('2025-03-15', 20).flatMap((day) => corp(day)),
    );
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('sends a new warning recommendation once and resolves when it is followed', async () => {
    const clock = new TestClock(new Date('2025-03-16T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('recommendation-change'),
      smtpUrl: smtp.url,
    });
    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] example.com: recommended to publish sp=reject and np=reject for subdomains that send no mail',
    ]);
    expect(opened.messages[0].mail.text).toContain('sp=reject; np=reject');
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    // The next reports show sp=reject, which also covers non-existent subdomains.
    await ingestDays(runtime, corp('2025-03-16', 'reject'));
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: example.com: recommended to publish sp=reject and np=reject for subdomains that send no mail',
    ]);
  });
});

describe('reporter-silent', () => {
  let runtime: TestRuntime;
  const day = (date: string, reporter: string): SampleDay => ({
    day: date,
    reporter,
    sources: [{ ip: '192.0.2.10', count: 50, pass: true }],
  });

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(runtime, BILLING_CATALOG);
    await ingestDays(
      runtime,
      daysUpTo('2025-03-14', 14).flatMap((date) => [
        day(date, 'google.com'),
        day(date, 'Outlook.com'),
      ]),
    );
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('alerts when a daily reporter stops and resolves when it reports again', async () => {
    const clock = new TestClock(new Date('2025-03-16T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('reporter-silent'),
      smtpUrl: smtp.url,
    });
    // Reports about 2025-03-15 may still be on their way.
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestDays(runtime, [day('2025-03-15', 'google.com'), day('2025-03-16', 'google.com')]);
    clock.set('2025-03-17T09:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] example.com: no reports from Outlook.com since 2025-03-14',
    ]);
    clock.advanceHours(3);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestDays(runtime, [day('2025-03-17', 'Outlook.com')]);
    clock.set('2025-03-18T09:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: example.com: Outlook.com reports again (latest report day 2025-03-17)',
    ]);
  });
});

describe('nothing-ingested', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  async function ingestAt(at: Date, id: string) {
    const report = buildReport({
      day: '2025-03-01',
      sources: [{ ip: '192.0.2.10', count: 1, pass: true }],
    });
    report.metadata.reportId = id;
    const outcome = await ingestInput(runtime.ingest, {
      bytes: Buffer.from(renderReportXml(report)),
      name: `${id}.xml`,
      source: 'file',
      origin: {},
    });
    // The arrival time on the test clock, not the wall clock.
    await runtime.db.pool.query('UPDATE raw_inputs SET received_at = $2 WHERE id = $1', [
      outcome.rawInputId,
      at,
    ]);
  }

  it('alerts after a day without input and resolves on the next one', async () => {
    const clock = new TestClock(new Date('2025-03-10T08:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('nothing-ingested'),
      smtpUrl: smtp.url,
    });
    // A new installation that never received anything is quiet.
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestAt(new Date('2025-03-10T06:00:00Z'), 'first');
    clock.set('2025-03-11T05:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([]);

    clock.set('2025-03-11T07:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] All domains: no report input received for 25 hours (since 2025-03-10 06:00 UTC)',
    ]);
    clock.advanceHours(5);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    await ingestAt(new Date('2025-03-11T12:30:00Z'), 'second');
    clock.set('2025-03-11T13:00:00Z');
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: All domains: report inputs arrive again (latest 2025-03-11T12:30:00.000Z)',
    ]);
  });
});

describe('quarantined-inputs', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com', MAX_RECORDS_PER_REPORT: '1' });
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  async function ingestTwoRecords(id: string): Promise<number> {
    const report = buildReport({
      day: '2025-03-01',
      sources: [
        { ip: '192.0.2.10', count: 1, pass: true },
        { ip: '192.0.2.11', count: 1, pass: true },
      ],
    });
    report.metadata.reportId = id;
    const outcome = await ingestInput(runtime.ingest, {
      bytes: Buffer.from(renderReportXml(report)),
      name: `${id}.xml`,
      source: 'file',
      origin: {},
    });
    expect(outcome.status).toBe('quarantined');
    return outcome.rawInputId;
  }

  it('alerts on quarantined inputs, again for new ones, and resolves when reprocessed', async () => {
    const clock = new TestClock(new Date('2025-03-10T08:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('quarantined-inputs'),
      smtpUrl: smtp.url,
    });
    expect((await runOnce(alerting)).subjects).toEqual([]);

    const first = await ingestTwoRecords('limit-1');
    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] Ingestion: 1 input in quarantine (1 unreadable, 0 partly read)',
    ]);
    expect(opened.messages[0].mail.text).toContain('limit-1.xml');

    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([]);

    const second = await ingestTwoRecords('limit-2');
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Worse: Ingestion: 2 inputs in quarantine (2 unreadable, 0 partly read)',
    ]);

    // Reading them again under the normal limits stores them.
    for (const id of [first, second]) {
      expect(await reopenQuarantinedInput(runtime.db.pool, id)).toBe(true);
      const outcome = await processStoredInput({ ...runtime.ingest, limits: DEFAULT_LIMITS }, id);
      expect(outcome.status).toBe('done');
    }
    clock.advanceHours(1);
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: Ingestion: the quarantine is empty',
    ]);
  });
});

describe('imap-connection', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('alerts after 30 minutes of failed connections and resolves on success', async () => {
    const mailbox = 'dmarc@imap.example.test/INBOX';
    const pool = runtime.db.pool;
    const clock = new TestClock(new Date('2025-03-10T08:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('imap-connection'),
      smtpUrl: smtp.url,
    });
    const failure = { connected: false as const, error: 'connect ECONNREFUSED 127.0.0.1:993' };

    await saveMailboxConnection(pool, mailbox, { connected: true }, clock.now());
    await saveMailboxConnection(pool, mailbox, failure, new Date('2025-03-10T08:05:00Z'));
    clock.set('2025-03-10T08:25:00Z');
    await saveMailboxConnection(pool, mailbox, failure, clock.now());
    expect((await runOnce(alerting)).subjects).toEqual([]);

    clock.set('2025-03-10T08:36:00Z');
    await saveMailboxConnection(pool, mailbox, failure, clock.now());
    const opened = await runOnce(alerting);
    expect(opened.subjects).toEqual([
      '[dmarc-lens] Ingestion: IMAP dmarc@imap.example.test/INBOX has failed to connect for 31 minutes',
    ]);
    expect(opened.messages[0].mail.text).toContain('connect ECONNREFUSED 127.0.0.1:993');

    clock.set('2025-03-10T08:50:00Z');
    await saveMailboxConnection(pool, mailbox, { connected: true }, clock.now());
    expect((await runOnce(alerting)).subjects).toEqual([
      '[dmarc-lens] Resolved: Ingestion: IMAP dmarc@imap.example.test/INBOX connected at 2025-03-10T08:50:00.000Z',
    ]);
  });
});
