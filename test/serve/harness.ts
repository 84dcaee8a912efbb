import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';

import { ingestInput, type IngestOutcome } from '../../src/ingest/pipeline.js';
import { createApp } from '../../src/serve/app.js';
import {
  openTestRuntime,
  silentLog,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';

export const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');
export const ADMIN_PASSWORD = 'correct-horse-battery-staple';

export interface TestServer {
  baseUrl: string;
  runtime: TestRuntime;
  close(): Promise<void>;
}

/** Starts the app on a free loopback port over a fresh database. */
export async function startTestServer(
  kind: DatabaseKind,
  options: {
    env?: Record<string, string>;
    demo?: boolean;
    log?: Logger;
    oneTimePassword?: boolean;
  } = {},
): Promise<TestServer> {
  const runtime = await openTestRuntime(kind, {
    DOMAINS: 'example.com',
    ...(options.oneTimePassword ? {} : { ADMIN_PASSWORD }),
    ...options.env,
  });
  const app = createApp({
    pool: runtime.db.pool,
    config: runtime.config,
    log: options.log ?? silentLog,
    ingest: runtime.ingest,
    demo: options.demo ?? false,
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    runtime,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.dispose();
    },
  };
}

/** Ingests a fixture file, or the given bytes under that name. */
export function ingestFixture(
  runtime: TestRuntime,
  name: string,
  bytes?: Buffer,
): Promise<IngestOutcome> {
  return ingestInput(runtime.ingest, {
    bytes: bytes ?? fs.readFileSync(path.join(FIXTURES, name)),
    name,
    source: 'file',
    origin: { path: name },
  });
}

export interface Session {
  cookie: string;
  csrfToken: string;
}

/** Logs in through the API and returns the session cookie and CSRF token. */
export async function logIn(baseUrl: string, username: string, password: string): Promise<Session> {
  const response = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (response.status !== 200) {
    throw new Error(
      `Login as ${username} failed with ${response.status}: ${await response.text()}`,
    );
  }
  const body = (await response.json()) as { csrfToken: string };
  const cookie = response.headers.get('set-cookie')!.split(';')[0];
  return { cookie, csrfToken: body.csrfToken };
}

/** Request headers for a session: the cookie, and the CSRF token unless `csrf` is false. */
export function sessionHeaders(session: Session, csrf = true): Record<string, string> {
  return csrf
    ? { cookie: session.cookie, 'x-csrf-token': session.csrfToken }
    : { cookie: session.cookie };
}

/** Parses CSV text per RFC 4180 into rows of cells. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        cell += '"';
        index++;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(cell);
      cell = '';
    } else if (char === '\r' && text[index + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      index++;
    } else cell += char;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** CSV rows as objects keyed by the header line. */
export function csvObjects(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text);
  return rows.map((row) => Object.fromEntries(header.map((name, index) => [name, row[index]])));
}

/**
 * Builds a report whose every free-text field carries HTML and script, about an owned domain so that
 * it shows up in the team's views. The payloads set `window.__xss`, which the browser test
 * checks after visiting every view.
 */
export function hostileReportXml(): string {
  const script = '&lt;script&gt;window.__xss=1&lt;/script&gt;';
  const image = '&lt;img src=x onerror="window.__xss=2"&gt;';
  return `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>${script}Evil Corp${image}</org_name>
    <email>${image}@evil.example</email>
    <extra_contact_info>javascript:window.__xss=3</extra_contact_info>
    <report_id>hostile-${image}</report_id>
    <date_range><begin>1764892800</begin><end>1764979199</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain>
    <p>none</p>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.66</source_ip>
      <count>4</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
        <reason><type>other</type><comment>${script}</comment></reason>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.com</header_from>
      <envelope_from>=HYPERLINK("http://evil.example")</envelope_from>
    </identifiers>
    <auth_results>
      <dkim><domain>${image}.example</domain><selector>${script}</selector><result>fail</result></dkim>
      <spf><domain>+cmd|' /C calc'!A0</domain><result>fail</result></spf>
    </auth_results>
  </record>
</feedback>
`;
}
