import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { generateLargeReportXml } from '../../src/bench/large-report.js';
import { openChildDatabase, warmUpChildDatabase, type BenchContext } from '../lib/context.js';
import { expectExit, importedRecords, MIB, runCli } from '../lib/measure.js';

const SECTION = 'large report';
const RSS_TARGET_MIB = 300;

/**
 * Imports one very large report, as XML and gzipped, with `dmarc-lens import` in a child
 * process: wall time and peak RSS.
 */
export async function benchLargeReport(context: BenchContext): Promise<void> {
  const records = context.quick ? 10_000 : 200_000;
  const database = await openChildDatabase(context, 'large_report');
  try {
    await warmUpChildDatabase(context, database);

    // Two seeds, so that the gzipped report is a different report and not a duplicate.
    const xml = generateLargeReportXml(records, context.seed);
    const xmlFile = join(context.workDir, 'large-report.xml');
    await writeFile(xmlFile, xml);
    const gzFile = join(context.workDir, 'large-report.xml.gz');
    const gz = gzipSync(generateLargeReportXml(records, context.seed + 1));
    await writeFile(gzFile, gz);

    context.results.add({
      section: SECTION,
      name: 'records per report',
      value: records,
      unit: 'records',
    });
    context.results.add({
      section: SECTION,
      name: 'XML size',
      value: xml.length / MIB,
      unit: 'MiB',
    });
    context.results.add({
      section: SECTION,
      name: 'gzip size',
      value: gz.length / MIB,
      unit: 'MiB',
    });

    for (const [label, file] of [
      ['XML', xmlFile],
      ['gzip', gzFile],
    ] as const) {
      context.progress(`large report: importing the ${label} file on ${database.kind}`);
      const run = await runCli(['import', file], database.env, context.workDir);
      expectExit(run, 0, `import of the large ${label} report`);
      const stored = importedRecords(run.stdout);
      if (stored !== records)
        throw new Error(`Import stored ${stored} records, expected ${records}`);

      const add = (name: string, value: number, unit: string, target?: number) =>
        context.results.add({
          section: SECTION,
          name: `${label} on ${database.kind}: ${name}`,
          value,
          unit,
          target: target === undefined ? undefined : { comparison: 'below', value: target },
        });
      add('time', run.seconds, 's');
      add('records/s', records / run.seconds, 'records/s');
      // The target is for a PostgreSQL deployment: PGlite's WebAssembly heap alone is larger.
      add(
        'peak RSS',
        run.maxRssMib,
        'MiB',
        database.kind === 'postgres' ? RSS_TARGET_MIB : undefined,
      );
    }
  } finally {
    await database.dispose();
  }
}
