import { performance } from 'node:perf_hooks';
import type pg from 'pg';

import { AnalysisService } from '../../src/analyze/service.js';
import { exportRecords, RECORD_COLUMNS, writeRows } from '../../src/export/exports.js';
import {
  findDomainPolicies,
  findIngestHealth,
  findMessagesPerDay,
  findReports,
  findSources,
  findSummaryTotals,
  findTopFailingSources,
  type DashboardFilter,
} from '../../src/store/dashboard.js';
import { rollUpAllReports } from '../../src/store/rollups.js';
import type { BenchContext } from '../lib/context.js';
import { openPostgresRuntime } from '../lib/databases.js';
import { silentLog } from '../lib/databases.js';
import { MIB, percentile, timed } from '../lib/measure.js';
import type { Target } from '../lib/results.js';
import { loadHistory } from './dashboard-data.js';

const SECTION = 'dashboard';
const QUERY_TARGET_MS = 150;
const EXPORT_ROWS = 1_000_000;

/**
 * Times the dashboard's queries over a large history: generates it with COPY, rolls it up,
 * then times the functions behind the HTTP API over repeated runs and streams a CSV export.
 */
export async function benchDashboard(context: BenchContext): Promise<void> {
  const records = context.quick ? 100_000 : 10_000_000;
  const days = context.quick ? 30 : 180;
  const today = new Date().toISOString().slice(0, 10);
  const firstDay = addDays(today, -days);
  const { runtime, database, dispose } = await openPostgresRuntime(
    context.postgresUrl!,
    'dashboard',
  );
  const pool = runtime.db.pool;
  const add: AddFigure = (name, value, unit, target, note) =>
    context.results.add({ section: SECTION, name, value, unit, note, target });

  try {
    context.progress(`dashboard: generating ${records} records`);
    const load = await timed(() =>
      loadWithoutSecondaryIndexes(pool, () =>
        loadHistory(pool, {
          records,
          days,
          domains: context.quick ? 5 : 20,
          senders: context.quick ? 3000 : 30_000,
          seed: context.seed,
          lastDay: new Date(`${addDays(today, -1)}T00:00:00Z`),
        }),
      ),
    );
    const totals = load.result.totals;
    context.progress(`dashboard: rolling up ${totals.reports} reports`);
    const rollup = await timed(() => rollUpAllReports(pool));
    const analysis = new AnalysisService({
      pool,
      log: silentLog,
      config: { servicesFile: undefined },
    });
    const attribution = await timed(() => analysis.refresh());
    await pool.query('VACUUM (ANALYZE) senders, daily_sender_stats, daily_domain_stats, reports');
    const { rows: senderCount } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM senders',
    );

    add('records', totals.records, 'records');
    add('reports', totals.reports, 'reports');
    add('distinct senders', senderCount[0].n, 'senders');
    add('load with COPY', totals.records / load.result.copySeconds, 'records/s');
    add('index build and VACUUM ANALYZE', load.result.indexSeconds, 's');
    add(
      'roll-up',
      totals.records / rollup.seconds,
      'records/s',
      undefined,
      `${rollup.seconds.toFixed(0)} s`,
    );
    add('attribution of all senders', attribution.seconds, 's');

    const allTime = dashboardFilter(null, null);
    // The dashboard opens on the last 30 days.
    const last30 = dashboardFilter(addDays(today, -29), today);
    const sampleOptions = context.quick
      ? { runs: 1, budgetSeconds: 1 }
      : { runs: 20, budgetSeconds: 90 };

    // A quick run's history is 30 days long, so all time would measure the same again.
    const windows = context.quick
      ? ([['last 30 days', last30]] as const)
      : ([
          ['last 30 days', last30],
          ['all time', allTime],
        ] as const);
    for (const [label, filter] of windows) {
      context.progress(`dashboard: overview and sources, ${label}`);
      const overview = await sample(() => loadOverview(pool, filter), sampleOptions);
      addLatency(add, `overview (${label})`, overview);
      const sources = await sample(
        () =>
          findSources(pool, filter, { page: 1, pageSize: 50, sort: 'dmarc_fail', order: 'desc' }),
        sampleOptions,
      );
      addLatency(add, `sources (${label})`, sources);
      // The analysis API names its window by days; all time is the whole generated history.
      const window = { from: filter.from ?? firstDay, to: filter.to ?? today };
      const services = await sample(() => analysis.services(window), sampleOptions);
      addLatency(add, `services (${label})`, services, false);
      const attributed = await sample(
        () => analysis.sources(window, { page: 1, pageSize: 50, sort: 'attention', order: 'desc' }),
        sampleOptions,
      );
      addLatency(add, `attributed sources (${label})`, attributed, false);
    }

    // Each overview panel alone, to show which one sets the overview's time.
    context.progress('dashboard: overview panels one by one');
    const panelOptions = { runs: context.quick ? 1 : 5, budgetSeconds: 30 };
    for (const [panel, run] of overviewPanels(pool, last30)) {
      const samples = await sample(run, panelOptions);
      add(`overview panel ${panel} (last 30 days): p50`, percentile(samples, 0.5), 'ms');
    }

    context.progress('dashboard: CSV export');
    await benchExport(context, pool, context.quick ? 20_000 : EXPORT_ROWS, add);
  } finally {
    if (process.env.BENCH_KEEP_DATABASE === '1') {
      context.progress(`dashboard: kept the database at ${database.url}`);
      await runtime.close();
    } else {
      await dispose();
    }
  }
}

type AddFigure = (
  name: string,
  value: number,
  unit: string,
  target?: Target,
  note?: string,
) => void;

/** Adds p50 and p95; the 150 ms target is set for the overview and sources panels only. */
function addLatency(add: AddFigure, name: string, samples: number[], targeted = true): void {
  const note = `${samples.length} runs`;
  const target = targeted ? ({ comparison: 'below', value: QUERY_TARGET_MS } as const) : undefined;
  add(`${name}: p50`, percentile(samples, 0.5), 'ms', undefined, note);
  add(`${name}: p95`, percentile(samples, 0.95), 'ms', target, note);
}

/**
 * Drops the secondary indexes of `records` while `load` runs and builds them again after, which
 * is faster than keeping them current row by row, then vacuums so that the visibility map and
 * statistics are as autovacuum would leave them. Index definitions are read from the catalog,
 * so that the rebuilt indexes are exactly the migrated ones.
 */
async function loadWithoutSecondaryIndexes<T>(
  pool: pg.Pool,
  load: () => Promise<T>,
): Promise<{ totals: T; copySeconds: number; indexSeconds: number }> {
  const { rows: indexes } = await pool.query<{ name: string; definition: string }>(
    `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
      WHERE schemaname = current_schema() AND tablename = 'records'
        AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'records'::regclass)`,
  );
  for (const index of indexes) await pool.query(`DROP INDEX ${index.name}`);
  const copy = await timed(load);

  const client = await pool.connect();
  const build = await timed(async () => {
    try {
      await client.query(`SET maintenance_work_mem = '512MB'`);
      // pg_indexes shows a partitioned table's index as `ON ONLY records`, which would build
      // no index on the partitions.
      for (const index of indexes) {
        await client.query(index.definition.replace(' ON ONLY ', ' ON '));
      }
    } finally {
      client.release();
    }
    await pool.query('VACUUM (ANALYZE) records');
  });
  return { totals: copy.result, copySeconds: copy.seconds, indexSeconds: build.seconds };
}

function dashboardFilter(from: string | null, to: string | null): DashboardFilter {
  return {
    from,
    to,
    domain: null,
    reporter: null,
    dmarcPass: null,
    disposition: null,
    timeZone: 'UTC',
    foreign: false,
  };
}

/** Lists the panels of `/api/summary`, as its route runs them. */
function overviewPanels(
  pool: pg.Pool,
  filter: DashboardFilter,
): Array<[string, () => Promise<unknown>]> {
  return [
    ['totals', () => findSummaryTotals(pool, filter)],
    ['messages per day', () => findMessagesPerDay(pool, filter)],
    ['domains', () => findDomainPolicies(pool, filter)],
    ['top failing sources', () => findTopFailingSources(pool, filter)],
    [
      'latest reports',
      () => findReports(pool, filter, { page: 1, pageSize: 10, sort: 'begin', order: 'desc' }),
    ],
    ['ingest health', () => findIngestHealth(pool)],
  ];
}

/** Loads the overview once: every panel at once over the pool, as `/api/summary` does. */
function loadOverview(pool: pg.Pool, filter: DashboardFilter): Promise<unknown[]> {
  return Promise.all(overviewPanels(pool, filter).map(([, run]) => run()));
}

/**
 * Times `run` after one untimed run: up to `runs` times, and no more once `budgetSeconds`
 * have passed, but at least three times unless `runs` is smaller. Returns milliseconds.
 */
async function sample(
  run: () => Promise<unknown>,
  options: { runs: number; budgetSeconds: number },
): Promise<number[]> {
  await run();
  const samples: number[] = [];
  const start = performance.now();
  while (
    samples.length < options.runs &&
    (samples.length < 3 || performance.now() - start < options.budgetSeconds * 1000)
  ) {
    const { seconds } = await timed(run);
    samples.push(seconds * 1000);
  }
  return samples;
}

/** Streams `rows` records through exportRecords and writeRows, as `export records` does. */
async function benchExport(
  context: BenchContext,
  pool: pg.Pool,
  rows: number,
  add: AddFigure,
): Promise<void> {
  let bytes = 0;
  let writes = 0;
  let firstRowMs = 0;
  const start = performance.now();
  const written = await writeRows(
    firstRows(exportRecords(pool, {}), rows),
    RECORD_COLUMNS,
    'csv',
    (chunk) => {
      writes += 1;
      // The first write is the header line; the second carries the first rows.
      if (writes === 2) firstRowMs = performance.now() - start;
      bytes += Buffer.byteLength(chunk);
    },
  );
  const seconds = (performance.now() - start) / 1000;
  if (written !== rows) throw new Error(`The export wrote ${written} rows, expected ${rows}`);

  add('CSV export: rows', rows, 'rows', undefined, 'the first rows of a full export');
  add('CSV export: first row after', firstRowMs, 'ms', { comparison: 'below', value: 1000 });
  add('CSV export: rows/s', rows / seconds, 'rows/s', { comparison: 'at-least', value: 100_000 });
  add('CSV export: MiB/s', bytes / MIB / seconds, 'MiB/s');
}

/** Passes on the first `limit` rows, then stops the export, which closes its cursor. */
async function* firstRows<Row>(
  batches: AsyncIterable<Row[]>,
  limit: number,
): AsyncGenerator<Row[]> {
  let count = 0;
  for await (const batch of batches) {
    const rest = limit - count;
    if (batch.length >= rest) {
      yield batch.slice(0, rest);
      return;
    }
    count += batch.length;
    yield batch;
  }
}

function addDays(day: string, days: number): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}
