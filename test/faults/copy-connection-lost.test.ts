import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { renderReportXml } from '../../src/demo/report-xml.js';
import { ingestInput, type IngestOutcome } from '../../src/ingest/pipeline.js';
import { buildLargeReports } from '../harness/report-mailbox.js';
import { waitFor } from '../harness/serve-process.js';
import { openTestRuntime, postgresAvailable, type TestRuntime } from '../helpers/database.js';

// In CI a missing PostgreSQL fails this file: postgresAvailable throws there.
const hasPostgres = await postgresAvailable();

describe.skipIf(!hasPostgres)('connection lost while records are copied', () => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime('postgres');
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('settles instead of hanging', async () => {
    // More records than one batch, so that the first batch is written while COPY waits.
    const [report] = buildLargeReports(17, 1, 3000);
    const bytes = Buffer.from(renderReportXml(report));

    // COPY into records waits for this lock (SHARE conflicts with writes, not with reads)
    // before it answers, so the connection is lost before the server has accepted any data,
    // as when a crashing server cuts it.
    const blocker = new pg.Client({ connectionString: runtime.config.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE records IN SHARE MODE');

    let settled: { outcome?: IngestOutcome; error?: Error } | null = null;
    const ingest = ingestInput(runtime.ingest, {
      bytes,
      name: 'large.xml',
      source: 'file',
      origin: {},
    }).then(
      (outcome) => (settled = { outcome }),
      (error: Error) => (settled = { error }),
    );

    try {
      const copyPid = await waitFor('the record writer to wait for the lock', async () => {
        const { rows } = await blocker.query<{ pid: number }>(
          `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE NOT l.granted AND l.relation = 'records'::regclass
              AND a.datname = current_database()`,
        );
        return rows[0]?.pid ?? null;
      });
      await blocker.query('SELECT pg_terminate_backend($1)', [copyPid]);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }

    await waitFor('the ingest to settle', async () => (settled ? true : null), 10_000);
    await ingest;
    expect(settled!.error?.message).toMatch(/terminat|connection/i);

    // The input stayed pending, and reading it again stores the report.
    const again = await ingestInput(runtime.ingest, {
      bytes,
      name: 'large.xml',
      source: 'file',
      origin: {},
    });
    expect(again.status).toBe('done');
    expect(again.records).toBe(3000);
  }, 60_000);
});
