// `npm run bench [-- --quick] [-- --only NAME[,NAME]] [-- --seed N]`: measures dmarc-lens on
// data it generates, prints a table and writes bench-results/<time>.json. Run through tsx, so
// that it can use the test harness's private Dovecot; it is not part of the compiled service.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import pg from 'pg';

import type { BenchContext } from './lib/context.js';
import { ROOT } from './lib/measure.js';
import { formatMarkdown, formatTable, Results } from './lib/results.js';
import { benchDashboard } from './sections/dashboard.js';
import { benchHostileCases } from './sections/hostile.js';
import { benchImapBacklog } from './sections/imap-backlog.js';
import { benchIngest } from './sections/ingest.js';
import { benchLargeReport } from './sections/large-report.js';
import { benchParse } from './sections/parse.js';
import { benchScaleOut } from './sections/scale-out.js';

interface Section {
  name: string;
  run(context: BenchContext): Promise<void>;
  /**
   * `always`: measures something without PostgreSQL. `children`: runs the CLI in child
   * processes, which fall back to PGlite without PostgreSQL; a quick run skips these then,
   * because each child's embedded database takes seconds to start. `always-postgres`: measures
   * nothing without PostgreSQL.
   */
  database: 'always' | 'children' | 'always-postgres';
}

const SECTIONS: Section[] = [
  { name: 'parse', run: benchParse, database: 'always' },
  { name: 'ingest', run: benchIngest, database: 'always' },
  { name: 'large-report', run: benchLargeReport, database: 'children' },
  { name: 'imap', run: benchImapBacklog, database: 'children' },
  { name: 'dashboard', run: benchDashboard, database: 'always-postgres' },
  { name: 'hostile', run: benchHostileCases, database: 'children' },
  { name: 'scale-out', run: benchScaleOut, database: 'always-postgres' },
];

const USAGE = `Usage: npm run bench -- [--quick] [--only NAME[,NAME…]] [--seed N] [--markdown]
Sections: ${SECTIONS.map((section) => section.name).join(', ')}
DATABASE_URL names the PostgreSQL server; the bench creates and drops its own databases there.`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      seed: { type: 'string', default: '1' },
      markdown: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed))
    throw new Error(`Invalid --seed ${values.seed}: expected an integer`);
  const only = values.only ? values.only.split(',').map((name) => name.trim()) : null;
  for (const name of only ?? []) {
    if (!SECTIONS.some((section) => section.name === name)) {
      throw new Error(`Unknown section ${JSON.stringify(name)}\n${USAGE}`);
    }
  }

  const postgresUrl = process.env.DATABASE_URL || null;
  const postgresVersion = postgresUrl ? await serverVersion(postgresUrl) : null;
  const results = new Results();
  const workDir = await mkdtemp(join(tmpdir(), 'dmarc-lens-bench-'));
  const startedAt = new Date();
  const context: BenchContext = {
    quick: values.quick,
    seed,
    postgresUrl,
    workDir,
    results,
    progress: (message) => process.stderr.write(`[${elapsed(startedAt)}] ${message}\n`),
  };
  context.progress(
    `${values.quick ? 'quick' : 'full'} run, seed ${seed}, ${postgresUrl ? `PostgreSQL ${postgresVersion}` : 'no DATABASE_URL: embedded PGlite only'}`,
  );

  let failures = 0;
  try {
    for (const section of SECTIONS) {
      if (only && !only.includes(section.name)) continue;
      if (!postgresUrl && section.database === 'always-postgres') {
        results.skip(section.name, 'needs PostgreSQL (set DATABASE_URL)');
        continue;
      }
      if (!postgresUrl && section.database === 'children' && values.quick) {
        results.skip(
          section.name,
          'a quick run needs PostgreSQL (set DATABASE_URL) for child processes',
        );
        continue;
      }
      context.progress(`${section.name}: start`);
      try {
        await section.run(context);
      } catch (error) {
        // One broken section must not hide the figures of the others; the exit code is 1 then.
        failures += 1;
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        context.progress(`${section.name}: FAILED\n${message}`);
        results.skip(
          section.name,
          `failed: ${error instanceof Error ? error.message.split('\n')[0] : error}`,
        );
      }
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }

  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  process.stdout.write(`\n${values.markdown ? formatMarkdown(results) : formatTable(results)}\n`);
  const file = await writeResults(results, {
    startedAt: startedAt.toISOString(),
    seconds,
    quick: values.quick,
    seed,
    only,
    commit: sourceVersion(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      node: process.version,
      postgres: postgresVersion,
    },
  });
  process.stdout.write(`\n${seconds.toFixed(1)} s; figures written to ${file}\n`);
  return failures > 0 ? 1 : 0;
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`PostgreSQL at DATABASE_URL is not reachable: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0].server_version;
  } finally {
    await client.end();
  }
}

async function writeResults(results: Results, run: Record<string, unknown>): Promise<string> {
  const folder = join(ROOT, 'bench-results');
  await mkdir(folder, { recursive: true });
  // A timestamp rather than a date alone, so that two runs on one day are both kept.
  const stamp = String(run.startedAt)
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z');
  const file = join(folder, `${stamp}.json`);
  const body = { ...run, figures: results.figures, skipped: results.skipped };
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

/** Returns the commit measured, marked `-dirty` when the working tree has changes. */
function sourceVersion(): string | null {
  try {
    const run = (args: string[]) =>
      execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    return `${run(['rev-parse', '--short', 'HEAD'])}${run(['status', '--porcelain']) ? '-dirty' : ''}`;
  } catch {
    return null;
  }
}

function elapsed(since: Date): string {
  return `${((Date.now() - since.getTime()) / 1000).toFixed(1).padStart(6)} s`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
