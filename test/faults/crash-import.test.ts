import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRandom, generateSampleReports } from '../../src/demo/sample-reports.js';
import { renderReportXml } from '../../src/demo/report-xml.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, postgresAvailable } from '../helpers/database.js';

const hasPostgres = await postgresAvailable();

describe.skipIf(!hasPostgres)('import killed at random points', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let folder: string;
  const expected = { reports: 0, records: 0, messages: 0, files: 0 };

  beforeAll(async () => {
    database = await createTestDatabase();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-crash-'));

    // A few hundred reports, some gzipped, as a receiver's archive folder would hold them.
    const reports = generateSampleReports({
      seed: 11,
      days: 20,
      endDate: new Date('2026-11-30T00:00:00Z'),
    });
    for (const [index, report] of reports.entries()) {
      const xml = Buffer.from(renderReportXml(report));
      const name = `report-${String(index).padStart(4, '0')}.xml`;
      if (index % 3 === 0) fs.writeFileSync(path.join(folder, `${name}.gz`), gzipSync(xml));
      else fs.writeFileSync(path.join(folder, name), xml);
      expected.reports += 1;
      expected.records += report.records.length;
      expected.messages += report.records.reduce((sum, record) => sum + record.count, 0);
    }
    expected.files = reports.length;
  });

  afterAll(async () => {
    await database?.drop();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('stores every report exactly once after repeated SIGKILLs', async () => {
    const env = { DATABASE_URL: database.url };
    const random = createRandom(4242);
    let killed = 0;

    for (let round = 0; round < 6; round++) {
      const result = await runCli(['import', folder], env, { killAfterMs: 300 + random() * 1500 });
      if (result.signal === 'SIGKILL') killed += 1;
    }
    const final = await runCli(['import', folder], env);

    expect(killed).toBeGreaterThan(0);
    expect(final.stderr).toBe('');
    expect(final.code).toBe(0);

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const totals = await client.query(
        `SELECT count(*)::int AS reports, sum(record_count)::int AS records,
                sum(message_count)::int AS messages FROM reports`,
      );
      expect(totals.rows[0]).toEqual({
        reports: expected.reports,
        records: expected.records,
        messages: expected.messages,
      });

      // Every report's records are all there: no report was cut by a kill.
      const stored = await client.query(
        `SELECT count(*)::int AS records, sum(count)::int AS messages FROM records`,
      );
      expect(stored.rows[0]).toEqual({ records: expected.records, messages: expected.messages });

      const inputs = await client.query(
        `SELECT status, count(*)::int AS n FROM raw_inputs GROUP BY status`,
      );
      expect(inputs.rows).toEqual([{ status: 'done', n: expected.files }]);
    } finally {
      await client.end();
    }
  }, 120_000);

  it('finishes the file in hand on SIGTERM and exits cleanly', async () => {
    const other = await createTestDatabase();
    try {
      const run = runCli(['import', folder], { DATABASE_URL: other.url });
      const client = new pg.Client({ connectionString: other.url });
      await client.connect();

      // Send SIGTERM once the import is under way, with hundreds of files still to go.
      for (let i = 0; i < 200; i++) {
        const started = await client
          .query('SELECT count(*)::int AS n FROM raw_inputs')
          .catch(() => ({ rows: [{ n: 0 }] }));
        if (started.rows[0].n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      run.child.kill('SIGTERM');
      const result = await run;

      const pending = await client.query(
        `SELECT count(*)::int AS n FROM raw_inputs WHERE status = 'pending'`,
      );
      await client.end();
      expect(result.signal).toBeNull();
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/Stopped early: +\d+ files not read/);
      expect(pending.rows[0].n).toBe(0);
    } finally {
      await other.drop();
    }
  }, 60_000);
});
