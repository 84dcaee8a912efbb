import {
  exportRecords,
  exportReports,
  RECORD_COLUMNS,
  REPORT_COLUMNS,
  writeRows,
  type ExportFilter,
} from '../export/exports.js';
import type { Runtime } from '../runtime.js';
import { openCurrentAnalysis } from './recommend.js';

interface ExportOptions {
  from?: Date;
  to?: Date;
  domain?: string;
  includeForeign?: boolean;
  format: 'csv' | 'json';
}

function writeStdout(chunk: string): Promise<void> | void {
  if (process.stdout.write(chunk)) return;
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

/** `dmarc-lens export reports|records`: streams to stdout. */
export async function runExport(
  runtime: Runtime,
  kind: 'reports' | 'records',
  options: ExportOptions,
): Promise<number> {
  const filter: ExportFilter = {
    from: options.from,
    // --to names the last day to include.
    to: options.to ? new Date(options.to.getTime() + 24 * 3600 * 1000) : undefined,
    domain: options.domain,
    includeForeign: options.includeForeign,
  };
  const pool = runtime.db.pool;
  // Roll up and attribute what was stored since the last run, so that `service` is current
  // even when no serve process is running.
  if (kind === 'records') await openCurrentAnalysis(runtime);
  if (kind === 'reports') {
    await writeRows(exportReports(pool, filter), REPORT_COLUMNS, options.format, writeStdout);
  } else {
    await writeRows(exportRecords(pool, filter), RECORD_COLUMNS, options.format, writeStdout);
  }
  return 0;
}
