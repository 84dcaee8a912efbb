import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openTestRuntime, postgresAvailable, type TestRuntime } from '../helpers/database.js';
import { runCli } from '../helpers/cli.js';
import { closedPort, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { daysUpTo, ingestDays, setCatalog } from './history.js';

// The command runs in its own process, which reaches the same database only on the server.
const available = await postgresAvailable();

function yesterday(): string {
  return new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
}

describe.skipIf(!available)('dmarc-lens alerts', () => {
  let runtime: TestRuntime;
  let smtp: TestSmtpServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    runtime = await openTestRuntime('postgres', { DOMAINS: 'example.com' });
    await setCatalog(
      runtime,
      'services:\n  - name: password-resets\n    contact: identity@example.com\n    rules: { ip: [192.0.2.20] }\n',
    );
    await ingestDays(
      runtime,
      daysUpTo(yesterday(), 5).map((day) => ({
        day,
        sources: [{ ip: '192.0.2.20', count: 100, pass: false }],
      })),
    );
    env = {
      DATABASE_URL: runtime.config.databaseUrl!,
      DOMAINS: 'example.com',
      SMTP_URL: smtp.url,
      ALERT_TO: 'secops@example.com',
      ALERT_FROM: 'dmarc-lens@example.test',
      PUBLIC_URL: 'https://dmarc.example.test',
    };
  });

  afterAll(async () => {
    await runtime?.dispose();
    await smtp?.close();
  });

  it('prints what would be sent with --dry-run and stores nothing', async () => {
    const result = await runCli(['alerts', 'run', '--dry-run', '--format', 'json'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const output = JSON.parse(result.stdout);
    expect(output.dry_run).toBe(true);
    expect(output.delivery).toBeNull();
    expect(output.notifications).toHaveLength(1);
    expect(output.notifications[0]).toMatchObject({
      kind: 'opened',
      key: 'service-pass-rate:example.com:password-resets',
      rule: 'service-pass-rate',
      severity: 'warning',
      recipients: ['secops@example.com', 'identity@example.com'],
      subject: '[dmarc-lens] example.com: password-resets DMARC pass rate is 0% (threshold 98%)',
    });
    expect(output.notifications[0].text).toContain('https://dmarc.example.test/services?');
    expect(output.notifications[0].html).toContain('<!DOCTYPE html>');

    expect(smtp.messages).toHaveLength(0);
    const { rows } = await runtime.db.pool.query(
      'SELECT (SELECT count(*) FROM alerts) AS alerts, (SELECT count(*) FROM alert_deliveries) AS deliveries',
    );
    expect(rows[0]).toEqual({ alerts: 0, deliveries: 0 });
  });

  it('sends once and then stays quiet', async () => {
    const first = await runCli(['alerts', 'run'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(
      'Sent: [dmarc-lens] example.com: password-resets DMARC pass rate is 0% (threshold 98%)',
    );
    expect(first.stdout).toContain('Delivery: 2 sent, 0 to retry, 0 failed.');
    expect(smtp.messages.flatMap((message) => message.recipients).sort()).toEqual([
      'identity@example.com',
      'secops@example.com',
    ]);

    const second = await runCli(['alerts', 'run'], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('0 alert messages');
    expect(smtp.messages).toHaveLength(2);
  });

  it('sends a test alert, and fails when SMTP is down', async () => {
    const sent = await runCli(['alerts', 'test', '--to', 'ops@example.com'], env);
    expect(sent.stdout).toBe('Test alert to ops@example.com: sent\n');
    expect(sent.code).toBe(0);
    expect(smtp.messages.at(-1)?.mail.subject).toMatch(/^\[dmarc-lens\] Test alert: /);

    const down = await runCli(['alerts', 'test'], {
      ...env,
      SMTP_URL: `smtp://127.0.0.1:${await closedPort()}`,
    });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^Test alert to secops@example\.com: failed: .*ECONNREFUSED/);
  });
});
