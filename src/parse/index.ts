import type { AggregateReport } from '../domain/report.js';
import { readAggregateReport, type ReportEvent } from './aggregate-report.js';
import { extractDocuments } from './containers.js';
import { decodeXml } from './decode.js';
import { ReportError, type DocumentPath } from './errors.js';
import { DEFAULT_LIMITS, type ParseLimits } from './limits.js';

export { ReportError, isReportError } from './errors.js';
export type { ReportErrorCode } from './errors.js';
export { DEFAULT_LIMITS, type ParseLimits } from './limits.js';
export type { ReportEvent } from './aggregate-report.js';

/** One XML document of an input, read as a stream of report events, or an unreadable part. */
export type InputPart =
  | { kind: 'report'; path: DocumentPath; warnings: string[]; events: AsyncGenerator<ReportEvent> }
  | { kind: 'error'; error: ReportError };

/**
 * Reads an input (XML, gzip, zip, e-mail or mbox, detected from its bytes) as a sequence of
 * reports, each streamed as events. Each part must be consumed before the next is requested.
 * @throws ReportError when the input as a whole is unusable
 */
export async function* readInput(
  bytes: Buffer,
  name: string,
  limits: ParseLimits = DEFAULT_LIMITS,
): AsyncGenerator<InputPart> {
  // Container warnings (bytes after gzip data) arise while a document streams, so they go to
  // the report being read at that moment.
  let warnings: string[] = [];
  const warn = (message: string) => warnings.push(message);

  for await (const part of extractDocuments(bytes, name, limits, warn)) {
    if (part.kind === 'error') {
      yield part;
      continue;
    }
    warnings = [];
    const text = decodeXml(part.chunks, part.path, (message) => warnings.push(message));
    yield {
      kind: 'report',
      path: part.path,
      warnings,
      events: readAggregateReport(text, part.path, limits, warnings),
    };
  }
}

export interface ParsedInput {
  reports: Array<AggregateReport & { path: DocumentPath }>;
  errors: ReportError[];
}

/**
 * Parses a whole input into memory: every readable report and an error for every part that
 * could not be read. For tests and small inputs; ingestion streams through `readInput`.
 */
export async function parseInput(
  bytes: Buffer,
  name: string,
  limits: ParseLimits = DEFAULT_LIMITS,
): Promise<ParsedInput> {
  const result: ParsedInput = { reports: [], errors: [] };
  try {
    for await (const part of readInput(bytes, name, limits)) {
      if (part.kind === 'error') {
        result.errors.push(part.error);
        continue;
      }
      try {
        let report: (AggregateReport & { path: DocumentPath }) | null = null;
        for await (const event of part.events) {
          if (event.kind === 'header') report = { ...event.header, records: [], path: part.path };
          else report!.records.push(...event.records);
        }
        if (report) result.reports.push(report);
      } catch (error) {
        if (error instanceof ReportError) result.errors.push(error);
        else throw error;
      }
    }
  } catch (error) {
    if (error instanceof ReportError) result.errors.push(error);
    else throw error;
  }
  return result;
}
