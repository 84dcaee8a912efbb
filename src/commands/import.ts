import cliProgress from 'cli-progress';

import { formatSummary, importFiles, listInputFiles } from '../ingest/import-files.js';
import type { Runtime } from '../runtime.js';
import { rollUpAllReports } from '../store/rollups.js';

/** `dmarc-lens import PATH…`: exit code 1 when any input was rejected. */
export async function runImport(runtime: Runtime, paths: string[]): Promise<number> {
  const files = await listInputFiles(paths);

  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        {
          format: 'Importing [{bar}] {value}/{total} {file}',
          stream: process.stderr,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(files.length, 0, { file: '' });

  // SIGTERM or Ctrl-C finishes the file in hand, then prints the summary.
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  const summary = await importFiles(
    runtime.ingest,
    files,
    (done, file) => bar?.update(done, { file: file.length > 40 ? `…${file.slice(-39)}` : file }),
    controller.signal,
  );
  bar?.stop();
  await rollUpAllReports(runtime.db.pool, runtime.log);
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);

  process.stdout.write(`${formatSummary(summary)}\n`);
  const rejected = summary.quarantined > 0 || summary.partial > 0;
  return rejected || summary.notRead > 0 ? 1 : 0;
}
