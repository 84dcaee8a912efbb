import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createApp } from '../../src/serve/app.js';
import { silentLog } from '../helpers/database.js';
import {
  ADMIN_PASSWORD,
  csvObjects,
  ingestFixture,
  logIn,
  sessionHeaders,
  startTestServer,
  type TestServer,
} from './harness.js';

describe('core endpoints on embedded PGlite', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('pglite');
    await ingestFixture(server.runtime, 'rfc7489-google.xml');
    await ingestFixture(server.runtime, 'truncated.xml');
  });

  afterAll(async () => {
    await server?.close();
  });

  it('reports health and readiness', async () => {
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('serves metrics on loopback', async () => {
    const text = await (await fetch(`${server.baseUrl}/metrics`)).text();

    expect(text).toContain('dmarc_lens_raw_inputs{status="quarantined"} 1');
    expect(text).toContain('dmarc_lens_records{foreign="false"} 3');
    expect(text).toContain('dmarc_lens_messages{foreign="false",result="fail"} 3');
  });

  it('logs in and serves the summary and a CSV twin', async () => {
    const session = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
    const summary = await (
      await fetch(`${server.baseUrl}/api/summary`, { headers: sessionHeaders(session) })
    ).json();
    const csv = await (
      await fetch(`${server.baseUrl}/api/records.csv?sort=begin&order=asc`, {
        headers: sessionHeaders(session),
      })
    ).text();

    expect(summary.totals).toMatchObject({ messages: 20, pass: 17, reports: 1 });
    expect(csvObjects(csv).map((row) => row.count)).toEqual(['12', '3', '5']);
  });

  it('reprocesses a quarantined input', async () => {
    const session = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
    const response = await fetch(`${server.baseUrl}/api/quarantine/reprocess`, {
      method: 'POST',
      headers: sessionHeaders(session),
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ reprocessed: 1, quarantined: 1 });
  });
});

describe('readiness without a database', () => {
  it('answers 503 while /healthz stays up', async () => {
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1 });
    pool.on('error', () => {});
    const server = await startTestServer('pglite');
    const app = createApp({
      pool,
      config: server.runtime.config,
      log: silentLog,
      ingest: { ...server.runtime.ingest, pool },
      demo: false,
    });
    const listener = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => listener.once('listening', () => resolve()));
    const base = `http://127.0.0.1:${(listener.address() as { port: number }).port}`;
    try {
      const ready = await fetch(`${base}/readyz`);
      const metrics = await (await fetch(`${base}/metrics`)).text();

      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(ready.status).toBe(503);
      expect((await ready.json()).error.code).toBe('database-unavailable');
      expect(metrics).toContain('dmarc_lens_database_up 0');
      expect((await fetch(`${base}/api/summary`)).status).toBe(503);
    } finally {
      listener.closeAllConnections();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      await pool.end();
      await server.close();
    }
  });
});
