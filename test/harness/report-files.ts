import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { renderReportXml } from '../../src/demo/report-xml.js';
import { generateSampleReports } from '../../src/demo/sample-reports.js';

/** Report files written to a folder, and what ingesting all of them must store. */
export interface ReportFiles {
  names: string[];
  reports: number;
  records: number;
  reportedMessages: number;
}

// Far from the mailbox corpus's dates, so that the two never share a report.
const END_DATE = new Date('2026-06-30T00:00:00Z');

/**
 * Writes one file per sample report into `folder`, every third one gzipped, with a
 * modification time an hour ago so that a folder watcher treats them as completely copied.
 */
export function writeReportFiles(folder: string, options: { seed: number; days: number }) {
  const reports = generateSampleReports({ ...options, endDate: END_DATE });
  const names: string[] = [];
  const anHourAgo = new Date(Date.now() - 3600_000);

  for (const [index, report] of reports.entries()) {
    const xml = Buffer.from(renderReportXml(report));
    const base = `report-${options.seed}-${String(index).padStart(4, '0')}.xml`;
    const name = index % 3 === 0 ? `${base}.gz` : base;
    const file = path.join(folder, name);
    fs.writeFileSync(file, index % 3 === 0 ? gzipSync(xml) : xml);
    fs.utimesSync(file, anHourAgo, anHourAgo);
    names.push(name);
  }

  const result: ReportFiles = {
    names,
    reports: reports.length,
    records: reports.reduce((sum, report) => sum + report.records.length, 0),
    reportedMessages: reports.reduce(
      (sum, report) => sum + report.records.reduce((count, record) => count + record.count, 0),
      0,
    ),
  };
  return result;
}

/** Names of the files directly in a folder, without its subfolders; [] when it is missing. */
export function listFiles(folder: string): string[] {
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name)
    .sort();
}
