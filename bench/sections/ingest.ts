import type pg from 'pg';

import { generateLargeReportXml } from '../../src/bench/large-report.js';
import { generateTypicalReports } from '../../src/bench/typical-reports.js';
import { ingestInput, type IngestContext } from '../../src/ingest/pipeline.js';
import { rollUpAllReports } from '../../src/store/rollups.js';
import type { BenchContext } from '../lib/context.js';
import {
  copyRecords,
  dumpRecords,
  openEmbeddedDatabase,
  openPostgresRuntime,
  recordColumns,
} from '../lib/databases.js';
import { timed } from '../lib/measure.js';

const SECTION = 'ingest';

interface Workload {
  name: string;
  inputs: Array<{ name: string; bytes: Buffer }>;
  records: number;
}

/** A database under test: where ingest writes, and how a plain COPY loads the same rows. */
interface TargetDatabase {
  label: 'PostgreSQL' | 'PGlite';
  pool: pg.Pool;
  ingest: IngestContext;
  /** Reads every row of `records` in COPY text format. */
  dump(columns: string[]): Promise<Buffer>;
  /** Loads rows in COPY text format with one COPY. */
  copy(columns: string[], rows: Buffer): Promise<void>;
}

/**
 * End-to-end ingest (parse, store, roll up) into PostgreSQL and into the embedded PGlite,
 * against a plain COPY of the same rows into the same, empty `records` table as the ceiling.
 */
export async function benchIngest(context: BenchContext): Promise<void> {
  const workloads = buildWorkloads(context);

  if (context.postgresUrl) {
    const { runtime, dispose } = await openPostgresRuntime(context.postgresUrl, 'ingest');
    try {
      const pool = runtime.db.pool;
      const database: TargetDatabase = {
        label: 'PostgreSQL',
        pool,
        ingest: runtime.ingest,
        dump: (columns) => dumpRecords(pool, columns),
        copy: (columns, rows) => copyRecords(pool, columns, rows),
      };
      for (const workload of workloads) await measureWorkload(context, database, workload);
    } finally {
      await dispose();
    }
  } else {
    context.results.skip(`${SECTION} (PostgreSQL)`, 'needs PostgreSQL (set DATABASE_URL)');
  }

  // Starting PGlite and migrating it takes 5 to 20 s here, a third of a quick run's minute, so
  // a quick run measures PGlite only when it has no PostgreSQL.
  if (context.quick && context.postgresUrl) {
    context.results.skip(
      `${SECTION} (PGlite)`,
      'a quick run with DATABASE_URL measures PostgreSQL only',
    );
    return;
  }
  const embedded = await openEmbeddedDatabase();
  try {
    const { pglite } = embedded;
    const database: TargetDatabase = {
      label: 'PGlite',
      pool: embedded.pool,
      ingest: embedded.ingest,
      dump: async (columns) => {
        const result = await pglite.query(
          `COPY (SELECT ${columns.join(', ')} FROM records) TO '/dev/blob'`,
        );
        return Buffer.from(await result.blob!.arrayBuffer());
      },
      copy: async (columns, rows) => {
        await pglite.query(`COPY records (${columns.join(', ')}) FROM '/dev/blob'`, [], {
          // Buffer.concat allocates a plain ArrayBuffer, never a shared one.
          blob: new Blob([rows as Uint8Array<ArrayBuffer>]),
        });
      },
    };
    for (const workload of workloads) await measureWorkload(context, database, workload);
  } finally {
    await embedded.close();
  }
}

function buildWorkloads(context: BenchContext): Workload[] {
  const typical = generateTypicalReports(context.quick ? 60 : 3000, { seed: context.seed + 100 });
  const bulkReports = context.quick ? 1 : 4;
  const bulkRecords = context.quick ? 5000 : 50_000;
  const bulk = Array.from({ length: bulkReports }, (_, index) => ({
    name: `bulk-${index}.xml`,
    bytes: generateLargeReportXml(bulkRecords, context.seed + 200 + index),
  }));
  return [
    {
      name: `typical (${typical.length} reports)`,
      inputs: typical,
      records: typical.reduce((sum, report) => sum + report.records, 0),
    },
    {
      name: `bulk (${bulkReports} × ${bulkRecords.toLocaleString('en-US')} records)`,
      inputs: bulk,
      records: bulkReports * bulkRecords,
    },
  ];
}

async function measureWorkload(
  context: BenchContext,
  database: TargetDatabase,
  workload: Workload,
): Promise<void> {
  const { pool } = database;
  context.progress(`ingest: ${database.label}, ${workload.name}, ${workload.records} records`);
  await checkpoint(pool);

  const ingest = await timed(async () => {
    let records = 0;
    for (const input of workload.inputs) {
      const outcome = await ingestInput(database.ingest, {
        bytes: input.bytes,
        name: input.name,
        source: 'file',
        origin: { benchmark: workload.name },
      });
      if (outcome.status !== 'done') {
        throw new Error(
          `Ingest of ${input.name} ended ${outcome.status}: ${JSON.stringify(outcome.errors)}`,
        );
      }
      records += outcome.records;
    }
    return records;
  });
  if (ingest.result !== workload.records) {
    throw new Error(`Ingest stored ${ingest.result} records, expected ${workload.records}`);
  }
  const rollup = await timed(() => rollUpAllReports(pool));

  // The ceiling: the rows just stored, loaded again with one COPY into the emptied table.
  const columns = await recordColumns(pool);
  const rows = await database.dump(columns);
  await pool.query('TRUNCATE records');
  await checkpoint(pool);
  const copy = await timed(() => database.copy(columns, rows));
  const { rows: counted } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM records',
  );
  if (counted[0].n !== workload.records) {
    throw new Error(`COPY loaded ${counted[0].n} records, expected ${workload.records}`);
  }
  // The next workload starts from an empty records table, as this one did.
  await pool.query('TRUNCATE records');

  const endToEnd = ingest.seconds + rollup.seconds;
  const ceiling = workload.records / copy.seconds;
  const prefix = `${database.label}, ${workload.name}`;
  const add = (name: string, value: number, unit: string, target?: number) =>
    context.results.add({
      section: SECTION,
      name: `${prefix}: ${name}`,
      value,
      unit,
      target: target === undefined ? undefined : { comparison: 'at-least', value: target },
    });
  add('parse + store', workload.records / ingest.seconds, 'records/s');
  add('roll-up', workload.records / rollup.seconds, 'records/s');
  add('end to end', workload.records / endToEnd, 'records/s');
  add('plain COPY (ceiling)', ceiling, 'records/s');
  add('parse + store / COPY', workload.records / ingest.seconds / ceiling, 'ratio');
  // The target is set for PostgreSQL; PGlite's figures are for comparison.
  add(
    'end to end / COPY',
    workload.records / endToEnd / ceiling,
    'ratio',
    database.label === 'PostgreSQL' ? 0.5 : undefined,
  );
}

/** Flushes dirty pages before a timed phase, so that one phase does not pay for another. */
async function checkpoint(pool: pg.Pool): Promise<void> {
  // CHECKPOINT needs superuser rights (or pg_checkpoint); without them the phases just share
  // the background writer's work.
  await pool.query('CHECKPOINT').catch(() => {});
}
