import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import type { RawInput } from '../store/raw-inputs.js';
import { ingestInput, type IngestContext, type IngestOutcome } from './pipeline.js';

/** Counts of one import, for the summary printed at the end. */
export interface ImportSummary {
  inputs: number;
  duplicateInputs: number;
  reportsStored: number;
  reportsDuplicate: number;
  reportsForeign: number;
  reportsReusedId: number;
  records: number;
  messages: number;
  /** Inputs with no readable report. */
  quarantined: number;
  /** Inputs with some readable reports and some unreadable parts. */
  partial: number;
  /** Inputs another process was reading at the same moment; they are done by that process. */
  claimedElsewhere: number;
  /** Files left unread because the import was stopped. */
  notRead: number;
  rejections: Array<{ input: string; code: string; message: string }>;
}

export function emptySummary(): ImportSummary {
  return {
    inputs: 0,
    duplicateInputs: 0,
    reportsStored: 0,
    reportsDuplicate: 0,
    reportsForeign: 0,
    reportsReusedId: 0,
    records: 0,
    messages: 0,
    quarantined: 0,
    partial: 0,
    claimedElsewhere: 0,
    notRead: 0,
    rejections: [],
  };
}

export function addOutcome(summary: ImportSummary, input: string, outcome: IngestOutcome): void {
  summary.inputs += 1;
  if (outcome.duplicateInput) summary.duplicateInputs += 1;
  summary.reportsStored += outcome.reportsStored;
  summary.reportsDuplicate += outcome.reportsDuplicate;
  summary.reportsForeign += outcome.reportsForeign;
  summary.reportsReusedId += outcome.reportsReusedId;
  summary.records += outcome.records;
  summary.messages += outcome.messages;
  if (outcome.status === 'quarantined') summary.quarantined += 1;
  if (outcome.status === 'partial') summary.partial += 1;
  if (outcome.status === 'claimed-elsewhere') summary.claimedElsewhere += 1;
  for (const error of outcome.errors) {
    summary.rejections.push({ input, code: error.code, message: error.message });
  }
}

/** Lists the files under the given paths, recursively and in a stable order. */
export async function listInputFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  const visit = async (current: string): Promise<void> => {
    const stat = await fs.stat(current);
    if (stat.isFile()) {
      files.push(current);
      return;
    }
    if (!stat.isDirectory()) return;
    const entries = await fs.readdir(current);
    entries.sort();
    for (const entry of entries) await visit(path.join(current, entry));
  };
  for (const item of paths) {
    try {
      await visit(item);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`Not found: ${item}`, { cause: error });
      }
      throw error;
    }
  }
  return files;
}

/**
 * Ingests files one at a time. A file above the input size limit is not read; it stays where
 * it is and is listed as rejected.
 */
export async function importFiles(
  context: IngestContext,
  files: string[],
  onProgress: (done: number, file: string) => void = () => {},
  signal?: AbortSignal,
): Promise<ImportSummary> {
  const summary = emptySummary();
  for (const [index, file] of files.entries()) {
    // Stop between files: the file in hand is always finished or rolled back as a whole.
    if (signal?.aborted) {
      summary.notRead = files.length - index;
      break;
    }
    const size = (await fs.stat(file)).size;
    if (size > context.limits.maxInputBytes) {
      summary.inputs += 1;
      summary.quarantined += 1;
      summary.rejections.push({
        input: file,
        code: 'input-too-large',
        message: `File of ${size} bytes is larger than the ${context.limits.maxInputBytes}-byte limit (MAX_INPUT_BYTES); it was not read`,
      });
      onProgress(index + 1, file);
      continue;
    }
    // Streamed rather than read whole: a plain XML report can be hundreds of MB.
    const input: RawInput = {
      bytes: { size, open: () => createReadStream(file, { highWaterMark: 1024 * 1024 }) },
      name: path.basename(file),
      source: 'file',
      origin: { path: path.resolve(file) },
    };
    addOutcome(summary, file, await ingestInput(context, input));
    onProgress(index + 1, file);
  }
  return summary;
}

/** Formats the summary for a person at a terminal. */
export function formatSummary(summary: ImportSummary): string {
  const lines = [
    `Inputs read:         ${summary.inputs} (${summary.duplicateInputs} already seen byte for byte)`,
    `Reports stored:      ${summary.reportsStored}`,
    `Reports duplicate:   ${summary.reportsDuplicate} (already stored, nothing changed)`,
    `Reports foreign:     ${summary.reportsForeign} (about domains outside DOMAINS, kept aside)`,
    `Reused report_id:    ${summary.reportsReusedId} (stored: same reporter and id, new date range or domain)`,
    `Records / messages:  ${summary.records} / ${summary.messages}`,
    `Quarantined inputs:  ${summary.quarantined}`,
    `Partly read inputs:  ${summary.partial}`,
  ];
  if (summary.notRead > 0) {
    lines.push(`Stopped early:       ${summary.notRead} files not read`);
  }
  if (summary.claimedElsewhere > 0) {
    lines.push(`Read by another instance: ${summary.claimedElsewhere}`);
  }
  if (summary.rejections.length > 0) {
    lines.push('', 'Rejected:');
    for (const rejection of summary.rejections) {
      const message = printable(rejection.message);
      lines.push(`  ${printable(rejection.input)}: [${rejection.code}] ${message}`);
    }
  }
  return lines.join('\n');
}

/**
 * Replaces control characters with U+FFFD: file and entry names come from strangers, and an
 * escape sequence printed raw would drive the reader's terminal.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
}
