import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { generateTypicalReports } from '../../src/bench/typical-reports.js';
import { openChildDatabase, warmUpChildDatabase, type BenchContext } from '../lib/context.js';
import { expectExit, importedRecords, runCli, timed } from '../lib/measure.js';

const SECTION = 'scale-out';

/**
 * Compares one `dmarc-lens import` over a folder of reports against two imports, each over one half,
 * running at once on the same PostgreSQL database.
 */
export async function benchScaleOut(context: BenchContext): Promise<void> {
  const count = context.quick ? 40 : 3000;
  const reports = generateTypicalReports(count, { seed: context.seed + 400 });
  const records = reports.reduce((sum, report) => sum + report.records, 0);
  // Alternate files between the halves, so that both get the same mix of sizes.
  const halves = [join(context.workDir, 'scale-out-a'), join(context.workDir, 'scale-out-b')];
  for (const half of halves) await mkdir(half, { recursive: true });
  for (const [index, report] of reports.entries()) {
    await writeFile(join(halves[index % 2], report.name), report.bytes);
  }

  const single = await openChildDatabase(context, 'scale_out_one');
  let singleRun;
  try {
    await warmUpChildDatabase(context, single);
    context.progress(`scale-out: one process, ${count} files, ${records} records`);
    singleRun = await runCli(['import', ...halves], single.env, context.workDir);
    expectExit(singleRun, 0, 'import by one process');
    if (importedRecords(singleRun.stdout) !== records) {
      throw new Error(
        `One process stored ${importedRecords(singleRun.stdout)} records, expected ${records}`,
      );
    }
  } finally {
    await single.dispose();
  }

  const shared = await openChildDatabase(context, 'scale_out_two');
  let pairRun;
  try {
    await warmUpChildDatabase(context, shared);
    context.progress('scale-out: two processes, one half each');
    pairRun = await timed(() =>
      Promise.all(halves.map((half) => runCli(['import', half], shared.env, context.workDir))),
    );
    let stored = 0;
    for (const run of pairRun.result) {
      expectExit(run, 0, 'import by one of two processes');
      stored += importedRecords(run.stdout);
    }
    if (stored !== records)
      throw new Error(`Two processes stored ${stored} records, expected ${records}`);
  } finally {
    await shared.dispose();
  }

  const add = (name: string, value: number, unit: string) =>
    context.results.add({ section: SECTION, name, value, unit });
  add('files', count, 'files');
  add('records', records, 'records');
  add('one process: records/s', records / singleRun.seconds, 'records/s');
  add('two processes: records/s', records / pairRun.seconds, 'records/s');
  add('gain of two processes', singleRun.seconds / pairRun.seconds, 'ratio');
  add('one process: peak RSS', singleRun.maxRssMib, 'MiB');
  add(
    'two processes: peak RSS of each',
    Math.max(...pairRun.result.map((run) => run.maxRssMib)),
    'MiB',
  );
}
