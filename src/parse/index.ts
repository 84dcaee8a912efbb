import type { AggregateReport } from '../domain/report.js';
import { readAggregateReport, type ReportEvent } from './aggregate-report.js';
import { extractDocuments, sniffContent } from './containers.js';
import { decodeXml } from './decode.js';
import { ReportError, type DocumentPath } from './errors.js';
import { DEFAULT_LIMITS, type ParseLimits } from './limits.js';

export { ReportError, isReportError } from './errors.js';
export type { ReportErrorCode } from './errors.js';
export { DEFAULT_LIMITS, type ParseLimits } from './limits.js';
export type { ReportEvent } from './aggregate-report.js';

/**
 * An input's bytes: in memory, or streamed from a file or from stored compressed content, so
 * that a plain XML report of hundreds of MB is never held in memory whole.
 */
export type InputContent = Buffer | StreamedContent;

export interface StreamedContent {
  size: number;
  /** Opens the bytes from the start. `readInput` opens it once per read. */
  open(): AsyncIterable<Buffer>;
}

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
  content: InputContent,
  name: string,
  limits: ParseLimits = DEFAULT_LIMITS,
): AsyncGenerator<InputPart> {
  const bytes = Buffer.isBuffer(content) ? content : await streamOrLoad(content, name, limits);
  if (!Buffer.isBuffer(bytes)) {
    // Plain XML read straight from its stream.
    yield readPart(bytes, [name], limits);
    return;
  }

  // Container warnings (bytes after gzip data) arise while a document streams, so they go to
  // the report being read at that moment.
  let warnings: string[] = [];
  const warn = (message: string) => warnings.push(message);

  for await (const part of extractDocuments(bytes, name, limits, warn)) {
    if (part.kind === 'error') {
      yield part;
      continue;
    }
    const report = readPart(part.chunks, part.path, limits);
    warnings = report.warnings;
    yield report;
  }
}

function readPart(chunks: AsyncIterable<Buffer>, path: DocumentPath, limits: ParseLimits) {
  const warnings: string[] = [];
  const text = decodeXml(chunks, path, (message) => warnings.push(message));
  return {
    kind: 'report' as const,
    path,
    warnings,
    events: readAggregateReport(text, path, limits, warnings),
  };
}

/**
 * Looks at the first chunk of streamed content: plain XML stays a stream, anything else (a
 * container, which is compressed and capped in size) is loaded into memory.
 */
async function streamOrLoad(
  content: StreamedContent,
  name: string,
  limits: ParseLimits,
): Promise<Buffer | AsyncIterable<Buffer>> {
  if (content.size > limits.maxInputBytes) {
    throw new ReportError(
      'input-too-large',
      `Input of ${content.size} bytes is larger than the ${limits.maxInputBytes}-byte limit (MAX_INPUT_BYTES)`,
      { document: [name] },
    );
  }
  const iterator = content.open()[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let first: IteratorResult<Buffer>;
  do first = await iterator.next();
  while (!first.done && first.value.length === 0);
  if (first.done) return Buffer.alloc(0);

  if (sniffContent(first.value) === 'xml') {
    return (async function* () {
      yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next())
        yield next.value;
    })();
  }
  chunks.push(first.value);
  for (let next = await iterator.next(); !next.done; next = await iterator.next())
    chunks.push(next.value);
  return Buffer.concat(chunks);
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
  bytes: InputContent,
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
