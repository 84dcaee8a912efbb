import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { renderReportXml } from '../../src/demo/report-xml.js';
import { openTestRuntime, postgresAvailable, type TestRuntime } from '../helpers/database.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { startServe, type ServeProcess } from '../harness/serve-process.js';
import { ADMIN_PASSWORD, logIn, sessionHeaders } from '../serve/harness.js';
import { buildReport, daysUpTo, ingestDays, setCatalog } from './history.js';

// serve runs in its own process, which reaches the same database only on the server.
const available = await postgresAvailable();

function daysAgo(days: number): string {
  return new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
}

describe.skipIf(!available)('alerts in serve', () => {
  let runtime: TestRuntime;
  let smtp: TestSmtpServer;
  let serve: ServeProcess | undefined;
  let folder: string;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-alerts-'));
    fs.mkdirSync(path.join(folder, 'watch'));
    fs.writeFileSync(path.join(folder, 'alerts.yaml'), 'digests: []\n');
    runtime = await openTestRuntime('postgres', { DOMAINS: 'example.com' });
    await setCatalog(
      runtime,
      'services:\n  - name: billing\n    rules: { ip: [192.0.2.10] }\n' +
        '  - name: password-resets\n    rules: { ip: [192.0.2.20] }\n',
    );
    await ingestDays(
      runtime,
      daysUpTo(daysAgo(1), 10).map((day) => ({
        day,
        sources: [
          { ip: '192.0.2.10', count: 100, pass: true },
          { ip: '192.0.2.20', count: 50, pass: false },
        ],
      })),
    );
  });

  afterAll(async () => {
    if (serve) await serve.kill();
    await runtime?.dispose();
    await smtp?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('evaluates at start and after an ingest batch, and serves the history', async () => {
    serve = await startServe({
      DATABASE_URL: runtime.config.databaseUrl!,
      DOMAINS: 'example.com',
      ADMIN_PASSWORD,
      SMTP_URL: smtp.url,
      ALERT_TO: 'secops@example.com',
      ALERT_RULES_FILE: path.join(folder, 'alerts.yaml'),
      WATCH_DIR: path.join(folder, 'watch'),
    });

    const [atStart] = await smtp.waitFor(1, 20_000);
    expect(atStart.mail.subject).toBe(
      '[dmarc-lens] example.com: password-resets DMARC pass rate is 0% (threshold 98%)',
    );

    // A report with a new spoofing source arrives through the watched folder.
    const report = buildReport({
      day: daysAgo(1),
      sources: [{ ip: '203.0.113.9', count: 40, pass: false }],
    });
    fs.writeFileSync(path.join(folder, 'watch', 'spoofing.xml'), renderReportXml(report));
    const messages = await smtp.waitFor(2, 30_000);
    expect(messages[1].mail.subject).toBe(
      '[dmarc-lens] example.com: new source 203.0.113.9 fails DMARC (40 messages, likely spoofing)',
    );

    const baseUrl = `http://127.0.0.1:${serve.port}`;
    const session = await logIn(baseUrl, 'admin', ADMIN_PASSWORD);
    const response = await fetch(`${baseUrl}/api/alerts?state=open`, {
      headers: sessionHeaders(session, false),
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(
      body.rows
        .map((row: { key: string; delivery: string }) => `${row.key} ${row.delivery}`)
        .sort(),
    ).toEqual([
      'new-failing-source:example.com sent',
      'service-pass-rate:example.com:password-resets sent',
    ]);

    const stopped = await serve.terminate();
    serve = undefined;
    expect(stopped.code).toBe(0);
  });
});
