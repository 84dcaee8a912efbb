import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findDeliveries } from '../../src/store/alerts.js';
import {
  openTestRuntime,
  postgresAvailable,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';
import { closedPort, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import {
  ALERT_TO,
  daysUpTo,
  ingestDays,
  onlyRule,
  PUBLIC_URL,
  setCatalog,
  testAlerting,
  TestClock,
} from './history.js';

const kind: DatabaseKind = (await postgresAvailable()) ? 'postgres' : 'pglite';

// A reporter name with markup, as anyone who mails a report to the rua address can choose.
const HOSTILE_REPORTER = 'Evil <img src=x onerror=alert(1)> & Co';

function hrefs(html: string): string[] {
  return [...html.matchAll(/href="([^"]*)"/g)].map((match) =>
    match[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"'),
  );
}

describe('alert delivery', () => {
  let runtime: TestRuntime;
  let smtp: TestSmtpServer;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(
      runtime,
      'services:\n  - name: password-resets\n    rules: { ip: [192.0.2.20] }\n',
    );
    await ingestDays(runtime, [
      ...daysUpTo('2025-03-11', 20).map((day) => ({
        day,
        sources: [{ ip: '192.0.2.20', count: 100, pass: true }],
      })),
      ...daysUpTo('2025-03-15', 4).map((day) => ({
        day,
        sources: [
          { ip: '192.0.2.20', count: 41, pass: true },
          { ip: '192.0.2.20', count: 59, pass: false },
        ],
      })),
      ...daysUpTo('2025-03-12', 14).map((day) => ({
        day,
        reporter: HOSTILE_REPORTER,
        sources: [{ ip: '192.0.2.21', count: 1, pass: true }],
      })),
    ]);
  });

  afterAll(async () => {
    await runtime?.dispose();
    await smtp?.close();
  });

  it('sends both parts with the subject and a filtered dashboard link', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('service-pass-rate'),
      smtpUrl: smtp.url,
    });
    const before = smtp.messages.length;
    const run = await alerting.run();
    expect(run.delivery).toEqual({ sent: 1, retrying: 0, failed: 0 });

    const [message] = smtp.messages.slice(before);
    expect(message.recipients).toEqual([ALERT_TO]);
    expect(message.mail.subject).toBe(
      '[dmarc-lens] example.com: password-resets DMARC pass rate fell to 41% (threshold 98%)',
    );
    expect(message.mail.from?.text).toBe('dmarc-lens@example.test');
    expect(message.mail.headers.get('auto-submitted')).toBe('auto-generated');

    const link =
      `${PUBLIC_URL}/services?range=custom&from=2025-03-12&to=2025-03-15` +
      '&domain=example.com&service=password-resets';
    const text = message.mail.text ?? '';
    const html = String(message.mail.html);
    expect(text).toContain(`Open in the dashboard: ${link}`);
    expect(hrefs(html)).toEqual([link]);

    // The numbers, the likely cause and the fix, in both parts.
    for (const part of [text, html]) {
      expect(part).toContain('Pass rate');
      expect(part).toContain('41%');
      expect(part).toContain('236');
      expect(part).toContain('Likely cause:');
      expect(part).toContain('mailer.example.net');
      expect(part).toContain('Fix:');
    }
  });

  it('escapes report values in the HTML part', async () => {
    const clock = new TestClock(new Date('2025-03-16T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('reporter-silent'),
      smtpUrl: smtp.url,
    });
    const before = smtp.messages.length;
    await alerting.run();
    const [message] = smtp.messages.slice(before);
    expect(message.mail.subject).toBe(
      `[dmarc-lens] example.com: no reports from ${HOSTILE_REPORTER} since 2025-03-12`,
    );
    const html = String(message.mail.html);
    expect(html).not.toContain('<img');
    expect(html).toContain('Evil &lt;img src=x onerror=alert(1)&gt; &amp; Co');
    // The reporter filter of the link carries the name URL-encoded.
    const [link] = hrefs(html);
    expect(new URL(link).searchParams.get('reporter')).toBe(HOSTILE_REPORTER);
    expect(message.mail.text).toContain(HOSTILE_REPORTER);
  });

  it('retries while SMTP is down, then marks the message failed', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const port = await closedPort();
    const alerting = testAlerting(runtime, {
      clock,
      settings: JSON.stringify({
        ...JSON.parse(onlyRule('new-failing-source')),
        retryMinutes: [1, 5],
      }),
      smtpUrl: `smtp://127.0.0.1:${port}`,
    });
    await ingestDays(runtime, [
      { day: '2025-03-15', sources: [{ ip: '203.0.113.9', count: 30, pass: false }] },
    ]);

    const run = await alerting.run();
    expect(run.delivery).toEqual({ sent: 0, retrying: 1, failed: 0 });
    const [id] = run.evaluation.deliveryIds;
    let [state] = await findDeliveries(runtime.db.pool, [id]);
    expect(state.status).toBe('pending');
    expect(state.attempts).toBe(1);
    expect(state.lastError).toContain('ECONNREFUSED');
    expect(state.nextAttemptAt.toISOString()).toBe('2025-03-15T09:01:00.000Z');

    // Not due yet: nothing is tried.
    clock.set('2025-03-15T09:00:30Z');
    expect(await alerting.deliverer.deliverDue()).toEqual({ sent: 0, retrying: 0, failed: 0 });

    clock.set('2025-03-15T09:01:00Z');
    expect(await alerting.deliverer.deliverDue()).toEqual({ sent: 0, retrying: 1, failed: 0 });
    [state] = await findDeliveries(runtime.db.pool, [id]);
    expect(state.attempts).toBe(2);
    expect(state.nextAttemptAt.toISOString()).toBe('2025-03-15T09:06:00.000Z');

    clock.set('2025-03-15T09:06:00Z');
    expect(await alerting.deliverer.deliverDue()).toEqual({ sent: 0, retrying: 0, failed: 1 });
    [state] = await findDeliveries(runtime.db.pool, [id]);
    expect(state.status).toBe('failed');
    expect(state.attempts).toBe(3);
    expect(state.lastError).toContain('ECONNREFUSED');

    // A failed message stays failed and is not tried again.
    clock.set('2025-03-16T09:00:00Z');
    expect(await alerting.deliverer.deliverDue()).toEqual({ sent: 0, retrying: 0, failed: 0 });
  });

  it('marks messages failed at once without SMTP_URL', async () => {
    const clock = new TestClock(new Date('2025-03-15T10:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: onlyRule('service-pass-rate', { cooldownHours: 0.5 }),
      smtpUrl: undefined,
      transport: null,
    });
    const run = await alerting.run();
    expect(run.delivery).toEqual({ sent: 0, retrying: 0, failed: 1 });
    const [state] = await findDeliveries(runtime.db.pool, run.evaluation.deliveryIds);
    expect(state.lastError).toBe('SMTP_URL is not set');
  });

  it('sends a test alert', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const alerting = testAlerting(runtime, { clock, settings: '{}', smtpUrl: smtp.url });
    const before = smtp.messages.length;
    const [state] = await alerting.sendTest(['ops@example.com']);
    expect(state.status).toBe('sent');
    const [message] = smtp.messages.slice(before);
    expect(message.recipients).toEqual(['ops@example.com']);
    expect(message.mail.subject).toBe(
      '[dmarc-lens] Test alert: example.com: password-resets DMARC pass rate fell to 41% (threshold 98%)',
    );
    expect(message.mail.text).toContain('This is a test message');
    expect(message.mail.html).toBeTruthy();
  });

  it('reports a failed test alert at once', async () => {
    const clock = new TestClock(new Date('2025-03-15T09:00:00Z'));
    const alerting = testAlerting(runtime, {
      clock,
      settings: '{}',
      smtpUrl: `smtp://127.0.0.1:${await closedPort()}`,
    });
    const [state] = await alerting.sendTest(['ops@example.com']);
    expect(state.status).toBe('failed');
    expect(state.attempts).toBe(1);
    expect(state.lastError).toContain('ECONNREFUSED');
  });
});

describe('digests', () => {
  let runtime: TestRuntime;
  let smtp: TestSmtpServer;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    await setCatalog(
      runtime,
      'services:\n  - name: billing\n    rules: { ip: [192.0.2.10] }\n' +
        '  - name: password-resets\n    rules: { ip: [192.0.2.20] }\n',
    );
    await ingestDays(
      runtime,
      daysUpTo('2025-03-16', 14).map((day) => ({
        day,
        sources: [
          { ip: '192.0.2.10', count: 90, pass: true },
          { ip: '192.0.2.20', count: 5, pass: false },
          // A new source in the last week only.
          ...(day >= '2025-03-12' ? [{ ip: '203.0.113.9', count: 5, pass: false }] : []),
        ],
      })),
    );
  });

  afterAll(async () => {
    await runtime?.dispose();
    await smtp?.close();
  });

  it('sends each daily and weekly digest once, at its hour', async () => {
    const clock = new TestClock(new Date('2025-03-17T06:59:00Z'));
    const settings = JSON.stringify({
      ...JSON.parse(onlyRule('policy-step', { enabled: false })),
      digests: [
        { to: 'daily@example.com', every: 'daily', hour: 7 },
        { to: 'weekly@example.com', every: 'weekly', weekday: 'monday', hour: 7 },
      ],
    });
    const alerting = testAlerting(runtime, { clock, settings, smtpUrl: smtp.url });

    const before = smtp.messages.length;
    expect((await alerting.run()).digests).toEqual([]);

    // 2025-03-17 is a Monday.
    clock.set('2025-03-17T07:05:00Z');
    const run = await alerting.run();
    expect(run.digests.map((digest) => digest.recipient).sort()).toEqual([
      'daily@example.com',
      'weekly@example.com',
    ]);
    const received = smtp.messages.slice(before);
    const daily = received.find((m) => m.recipients.includes('daily@example.com'))!;
    const weekly = received.find((m) => m.recipients.includes('weekly@example.com'))!;
    expect(daily.mail.subject).toBe(
      '[dmarc-lens] Daily digest 2025-03-16: 100 messages, 90% pass DMARC (+0 points)',
    );
    expect(weekly.mail.subject).toBe(
      '[dmarc-lens] Weekly digest 2025-03-10 to 2025-03-16: 690 messages, 91.3% pass DMARC (-3.4 points)',
    );
    const text = weekly.mail.text ?? '';
    expect(text).toContain('Top failing services');
    expect(text).toMatch(/password-resets\s+example\.com\s+35\s+0%/);
    expect(text).toContain('Top failing sources');
    expect(text).toContain('New sources');
    expect(text).toMatch(/203\.0\.113\.9\s+unattributed\s+example\.com\s+2025-03-12/);
    expect(text).toContain('Open recommendations');
    expect(text).toContain('password-resets passes DMARC for 0%');
    expect(String(weekly.mail.html)).toContain('<h3');

    clock.advanceHours(2);
    expect((await alerting.run()).digests).toEqual([]);

    clock.set('2025-03-18T07:00:00Z');
    expect((await alerting.run()).digests.map((digest) => digest.recipient)).toEqual([
      'daily@example.com',
    ]);
  });
});
