import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseCatalog } from '../../src/analyze/catalog.js';
import { exportRecords } from '../../src/export/exports.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import {
  attributeAllSenders,
  attributeSenderBatch,
  CatalogCache,
  createAttributionWorker,
  RepeatingJob,
} from '../../src/store/attribution.js';
import { updateCatalog } from '../../src/store/catalog.js';
import { rollUpAllReports } from '../../src/store/rollups.js';
import {
  openTestRuntime,
  postgresAvailable,
  silentLog,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');

// The fixture's senders: 198.51.100.23 signs with example.com and sendgrid.net; 2001:db8::7
// fails both (forwarded); 203.0.113.9 passes SPF for billing.example.com.
const FIRST = parseCatalog(`services:
  - name: mailer
    rules:
      ip: [2001:db8::/64]
`);

const SECOND = parseCatalog(`services:
  - name: billing
    rules:
      spf: [billing.example.com]
  - name: marketing
    rules:
      provider: sendgrid
  - name: mailer
    rules:
      ip: [2001:db8:1::/48]
`);

interface SenderRow {
  ip: string;
  service: string | null;
  provider: string | null;
  attribution_rule: string | null;
  attribution_confidence: string | null;
  attributed_version: number | null;
}

async function senders(runtime: TestRuntime): Promise<Record<string, Omit<SenderRow, 'ip'>>> {
  const { rows } = await runtime.db.pool.query<SenderRow>(
    `SELECT host(source_ip) AS ip, service, provider, attribution_rule, attribution_confidence,
            attributed_version
       FROM senders`,
  );
  return Object.fromEntries(rows.map(({ ip, ...rest }) => [ip, rest]));
}

async function counts(runtime: TestRuntime) {
  const { rows } = await runtime.db.pool.query(
    `SELECT (SELECT count(*)::int FROM records) AS records,
            (SELECT count(*)::int FROM raw_inputs) AS inputs,
            (SELECT sum(messages)::int FROM daily_sender_stats) AS messages`,
  );
  return rows[0];
}

const kinds: DatabaseKind[] = ['pglite'];
if (await postgresAvailable()) kinds.push('postgres');

describe.each(kinds)('attribution in %s', (kind) => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
    const name = 'rfc7489-google.xml';
    await ingestInput(runtime.ingest, {
      bytes: fs.readFileSync(path.join(FIXTURES, name)),
      name,
      source: 'file',
      origin: {},
    });
    await rollUpAllReports(runtime.db.pool);
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('attributes under the empty catalog to providers only', async () => {
    const attributed = await attributeAllSenders(runtime.db.pool, silentLog);

    expect(attributed).toBe(3);
    const rows = await senders(runtime);
    expect(rows['198.51.100.23']).toEqual({
      service: null,
      provider: 'sendgrid',
      attribution_rule: 'provider sendgrid (dkim d=sendgrid.net)',
      attribution_confidence: 'medium',
      attributed_version: 0,
    });
    expect(rows['203.0.113.9'].service).toBeNull();
    expect(rows['203.0.113.9'].provider).toBeNull();
    expect(rows['203.0.113.9'].attributed_version).toBe(0);
  });

  it('leaves senders alone while the catalog is unchanged', async () => {
    expect(await attributeAllSenders(runtime.db.pool, silentLog)).toBe(0);
  });

  it('attributes an IPv6 source by its range', async () => {
    await updateCatalog(runtime.db.pool, () => FIRST);
    const attributed = await attributeAllSenders(runtime.db.pool, silentLog);

    expect(attributed).toBe(3);
    const rows = await senders(runtime);
    expect(rows['2001:db8::7']).toEqual({
      service: 'mailer',
      provider: null,
      attribution_rule: 'ip 2001:db8::/64',
      attribution_confidence: 'high',
      attributed_version: 1,
    });
  });

  it('recomputes history after a catalog change without re-importing', async () => {
    const before = await counts(runtime);

    await updateCatalog(runtime.db.pool, () => SECOND);
    const attributed = await attributeAllSenders(runtime.db.pool, silentLog);

    expect(attributed).toBe(3);
    const rows = await senders(runtime);
    expect(rows['203.0.113.9']).toMatchObject({
      service: 'billing',
      attribution_rule: 'spf billing.example.com',
      attribution_confidence: 'medium',
      attributed_version: 2,
    });
    // A service reached through a provider keeps the provider, which selects fix texts.
    expect(rows['198.51.100.23']).toMatchObject({
      service: 'marketing',
      provider: 'sendgrid',
      attribution_rule: 'provider sendgrid',
      attribution_confidence: 'low',
    });
    expect(rows['2001:db8::7']).toMatchObject({ service: null, attribution_rule: null });
    expect(await counts(runtime)).toEqual(before);
  });

  it('fills service in the records export', async () => {
    const exported: Record<string, unknown>[] = [];
    for await (const batch of exportRecords(runtime.db.pool, {})) exported.push(...batch);

    const byIp = Object.fromEntries(exported.map((row) => [row.source_ip, row]));
    expect(byIp['203.0.113.9'].service).toBe('billing');
    expect(byIp['198.51.100.23'].service).toBe('marketing');
    expect(byIp['2001:db8::7'].service).toBeNull();
    // No reverse DNS was looked up, so no source has a name yet.
    expect(byIp['203.0.113.9'].source_name).toBeNull();
  });

  it('works through the senders in batches', async () => {
    await updateCatalog(runtime.db.pool, () => FIRST);
    const cache = new CatalogCache();

    expect(await attributeSenderBatch(runtime.db.pool, cache, 2)).toBe(2);
    expect(await attributeSenderBatch(runtime.db.pool, cache, 2)).toBe(1);
    expect(await attributeSenderBatch(runtime.db.pool, cache, 2)).toBe(0);
    const versions = Object.values(await senders(runtime)).map((row) => row.attributed_version);
    expect(versions).toEqual([3, 3, 3]);
  });

  it('runs the worker when woken after a catalog change', async () => {
    const worker = createAttributionWorker(runtime.db.pool, silentLog);
    const done: number[] = [];
    worker.onDone = (count) => done.push(count);
    worker.start();
    try {
      await updateCatalog(runtime.db.pool, () => SECOND);
      worker.wake();
      await waitFor(async () => done.reduce((sum, count) => sum + count, 0) >= 3);

      const rows = await senders(runtime);
      expect(rows['203.0.113.9'].service).toBe('billing');
      expect(rows['203.0.113.9'].attributed_version).toBe(4);
    } finally {
      await worker.stop();
    }
  });
});

describe('repeating job', () => {
  it('runs once more when woken during a run', async () => {
    let runs = 0;
    let release: () => void = () => {};
    const job = new RepeatingJob(
      'test job',
      silentLog,
      async () => {
        runs += 1;
        if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
        return 0;
      },
      3600,
    );
    job.start();
    await waitFor(async () => runs === 1);
    job.wake();
    release();

    await waitFor(async () => runs === 2);
    await job.stop();
    expect(runs).toBe(2);
  });

  it('retries after a failure', async () => {
    let runs = 0;
    const job = new RepeatingJob(
      'failing job',
      silentLog,
      async () => {
        runs += 1;
        if (runs === 1) throw new Error('database is down');
        return 1;
      },
      3600,
    );
    const done: number[] = [];
    job.onDone = (count) => done.push(count);
    job.start();

    await waitFor(async () => done.length === 1, 5000);
    await job.stop();
    expect(runs).toBe(2);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
