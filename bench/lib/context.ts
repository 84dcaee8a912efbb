import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { generateLargeReportXml } from '../../src/bench/large-report.js';
import { createDatabase } from './databases.js';
import { expectExit, runCli, type ChildRun } from './measure.js';
import type { Results } from './results.js';

/** The run's settings, scratch folder and results, shared by every section. */
export interface BenchContext {
  quick: boolean;
  seed: number;
  /** DATABASE_URL, or null when only the embedded database is available. */
  postgresUrl: string | null;
  /** Scratch folder of this run, removed at the end. */
  workDir: string;
  results: Results;
  /** Prints a progress line to stderr. */
  progress(message: string): void;
}

/** The database a CLI child process ingests into, and how to pass it in its environment. */
export interface ChildDatabase {
  kind: 'postgres' | 'pglite';
  env: Record<string, string | undefined>;
  dispose(): Promise<void>;
}

/**
 * Opens a fresh PostgreSQL database for CLI children, or without DATABASE_URL one embedded data
 * folder per run that children use one after another. The first child on that folder pays
 * for the migrations, so a section that times children should run a warm-up child first.
 */
export async function openChildDatabase(
  context: BenchContext,
  label: string,
): Promise<ChildDatabase> {
  if (context.postgresUrl) {
    const database = await createDatabase(context.postgresUrl, label);
    return {
      kind: 'postgres',
      env: { DATABASE_URL: database.url, DATA_DIR: join(context.workDir, 'unused-data') },
      dispose: () => database.drop(),
    };
  }
  const dataDir = join(context.workDir, 'embedded-data');
  await mkdir(dataDir, { recursive: true });
  return {
    kind: 'pglite',
    env: { DATABASE_URL: undefined, DATA_DIR: dataDir },
    dispose: async () => {},
  };
}

/**
 * Imports one small report so that migrations and partitions exist before a timed child runs,
 * and returns that child's run as the baseline of an import that reads almost nothing.
 */
export async function warmUpChildDatabase(
  context: BenchContext,
  database: ChildDatabase,
): Promise<ChildRun> {
  const file = join(context.workDir, 'warm-up.xml');
  // Seed 0 is used by no measured report; a second warm-up only repeats the same bytes.
  await writeFile(file, generateLargeReportXml(1, 0));
  const run = await runCli(['import', file], database.env, context.workDir);
  expectExit(run, 0, 'warm-up import');
  return run;
}
