import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEMO_DOMAINS, loadDemoData } from '../../src/commands/demo.js';
import { openTestRuntime, type TestRuntime } from '../helpers/database.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { setCatalog, testAlerting, TestClock } from './history.js';

const SERVICES_FILE = path.join(import.meta.dirname, '..', '..', 'samples', 'services.yaml');

// The demo, like `dmarc-lens demo`, runs on the embedded database.
describe('alerts on the demo data', () => {
  let runtime: TestRuntime;
  let smtp: TestSmtpServer;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    runtime = await openTestRuntime('pglite', { DOMAINS: DEMO_DOMAINS });
    await setCatalog(runtime, fs.readFileSync(SERVICES_FILE, 'utf8'));
    await loadDemoData(runtime);
    await setCatalog(runtime, fs.readFileSync(SERVICES_FILE, 'utf8'));
  });

  afterAll(async () => {
    await runtime?.dispose();
    await smtp?.close();
  });

  it('sends what the data calls for once, then nothing', async () => {
    // The demo data ends yesterday, so the clock is the wall clock.
    const clock = new TestClock(new Date());
    const alerting = testAlerting(runtime, {
      clock,
      settings: JSON.stringify({ digests: [] }),
      smtpUrl: smtp.url,
    });

    const first = await alerting.run();
    expect(first.evaluation.errors).toEqual([]);
    const keys = first.evaluation.notifications.map((n) => `${n.kind} ${n.key}`).sort();
    expect(keys).toEqual([
      'opened new-failing-source:example.com',
      'opened new-passing-source:example.com',
      'opened policy-step:example.net',
      'opened policy-step:example.org',
      'opened quarantined-inputs',
      'opened recommendation:example.net:-:set-subdomain-policy',
      'opened service-pass-rate:example.com:password-resets',
    ]);
    const subjects = smtp.messages.map((message) => message.mail.subject);
    expect(new Set(subjects)).toEqual(
      new Set(first.evaluation.notifications.map((n) => n.message.subject)),
    );
    expect(subjects).toContain(
      '[dmarc-lens] example.com: password-resets DMARC pass rate is 0% (threshold 98%)',
    );
    // The service owner named in the catalog gets its alert as well.
    const resets = smtp.messages.find((m) => m.mail.subject?.includes('password-resets'));
    expect(
      smtp.messages
        .filter((m) => m.mail.subject === resets?.mail.subject)
        .flatMap((m) => m.recipients)
        .sort(),
    ).toEqual(['identity-team@example.com', 'secops@example.com']);
    expect(first.delivery?.failed).toBe(0);
    expect(first.delivery?.sent).toBe(smtp.messages.length);

    clock.advanceHours(1);
    const second = await alerting.run();
    expect(second.evaluation.notifications).toEqual([]);
    expect(second.delivery).toEqual({ sent: 0, retrying: 0, failed: 0 });
    expect(smtp.messages.length).toBe(first.delivery?.sent);
  });
});
