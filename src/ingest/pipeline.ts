import type { Logger } from 'pino';
import type pg from 'pg';

import { isOwnedDomain } from '../domain/domains.js';
import {
  isReportError,
  readInput,
  type InputContent,
  type ParseLimits,
  type ReportEvent,
} from '../parse/index.js';
import {
  claimRawInput,
  countAttempt,
  finishRawInput,
  loadRawContent,
  saveRawInput,
  type PartError,
  type RawInput,
  type RawInputStatus,
} from '../store/raw-inputs.js';
import {
  isReportIdReused,
  openRecordWriter,
  saveReportHeader,
  saveReportTotals,
  type RecordWriter,
  type StoredReport,
} from '../store/reports.js';

export interface IngestContext {
  pool: pg.Pool;
  log: Logger;
  limits: ParseLimits;
  /** DOMAINS: reports about other domains are stored as foreign. Empty accepts everything. */
  ownedDomains: readonly string[];
  /** Write records with COPY; false on the embedded database, whose socket lacks COPY. */
  useCopy: boolean;
}

export interface IngestOutcome {
  rawInputId: number;
  /** `claimed-elsewhere`: another process is reading the same input right now. */
  status: Exclude<RawInputStatus, 'pending'> | 'claimed-elsewhere';
  /** True when these exact bytes had already been ingested. */
  duplicateInput: boolean;
  reportsStored: number;
  reportsDuplicate: number;
  reportsForeign: number;
  /** Reports stored under a report_id the reporter already used for another date range. */
  reportsReusedId: number;
  records: number;
  messages: number;
  errors: PartError[];
  /** Ids of the reports this call stored, for attribution and alerts. */
  storedReportIds: number[];
}

/**
 * Ingests one raw input: stores its bytes first, then parses and stores its reports in one
 * transaction that also marks the input done. A crash before the commit leaves the input
 * pending, and the next run reads it again; nothing is lost or stored twice.
 * @throws when the database fails; the input then stays pending for a retry
 */
export async function ingestInput(context: IngestContext, input: RawInput): Promise<IngestOutcome> {
  const stored = await saveRawInput(context.pool, input);
  if (stored.status !== 'pending') {
    return { ...emptyOutcome(stored.id, stored.status), duplicateInput: true };
  }
  const outcome = await processRawInput(context, stored.id, input.bytes, input.name);
  return { ...outcome, duplicateInput: outcome.duplicateInput || stored.existed };
}

/** Reads a stored input again, for `reprocess` and for inputs that a crash left pending. */
export async function processStoredInput(
  context: IngestContext,
  id: number,
): Promise<IngestOutcome> {
  const bytes = await loadRawContent(context.pool, id);
  const { rows } = await context.pool.query<{ name: string }>(
    'SELECT name FROM raw_inputs WHERE id = $1',
    [id],
  );
  return processRawInput(context, id, bytes, rows[0].name);
}

function emptyOutcome(rawInputId: number, status: IngestOutcome['status']): IngestOutcome {
  return {
    rawInputId,
    status,
    duplicateInput: false,
    reportsStored: 0,
    reportsDuplicate: 0,
    reportsForeign: 0,
    reportsReusedId: 0,
    records: 0,
    messages: 0,
    errors: [],
    storedReportIds: [],
  };
}

// Attempts that never finished (the process died, or the database went away) before an input
// is quarantined, so that one input that crashes the reader cannot stop ingestion for good.
const MAX_UNFINISHED_ATTEMPTS = 5;
// Deadlocks between two inputs that share reports are resolved by PostgreSQL aborting one
// transaction; that input is simply read again.
const MAX_DEADLOCK_RETRIES = 3;
const CLAIM_RETRIES = 5;

async function processRawInput(
  context: IngestContext,
  rawInputId: number,
  bytes: InputContent,
  name: string,
): Promise<IngestOutcome> {
  const attempts = await countAttempt(context.pool, rawInputId);
  if (attempts !== null && attempts > MAX_UNFINISHED_ATTEMPTS) {
    const error = new Error(
      `Reading this input did not finish ${MAX_UNFINISHED_ATTEMPTS} times (the process stopped ` +
        'or the database failed each time); run reprocess to try again',
    );
    return quarantineAfterInternalError(context, rawInputId, name, error, 'repeated-failure');
  }

  for (let retry = 0; ; retry++) {
    try {
      const outcome = await processRawInputOnce(context, rawInputId, bytes, name);
      // Another process took it after this call counted an attempt: take the count back.
      if (outcome.status === 'claimed-elsewhere' && attempts !== null) {
        await countAttempt(context.pool, rawInputId, -1);
      }
      return outcome;
    } catch (error) {
      const code = (error as { code?: unknown })?.code;
      if (retry >= MAX_DEADLOCK_RETRIES || (code !== '40P01' && code !== '40001')) throw error;
      context.log.info({ rawInputId, code, retry }, 'Input hit a deadlock; reading it again');
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    }
  }
}

async function processRawInputOnce(
  context: IngestContext,
  rawInputId: number,
  bytes: InputContent,
  name: string,
): Promise<IngestOutcome> {
  const client = await context.pool.connect();
  let released = false;
  try {
    await client.query('BEGIN');
    // A lock held only for a moment (another process counting its attempt) must not make both
    // processes step back, so a locked input is asked for again a few times before giving up.
    let claim = await claimRawInput(client, rawInputId);
    for (let retry = 0; !claim && retry < CLAIM_RETRIES; retry++) {
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 40));
      claim = await claimRawInput(client, rawInputId);
    }
    if (!claim) {
      await client.query('ROLLBACK');
      return emptyOutcome(rawInputId, 'claimed-elsewhere');
    }
    if (claim.status !== 'pending') {
      await client.query('ROLLBACK');
      return { ...emptyOutcome(rawInputId, claim.status), duplicateInput: true };
    }

    const outcome = await readAndStoreReports(context, client, rawInputId, bytes, name);
    await finishRawInput(client, rawInputId, {
      status: outcome.status as Exclude<RawInputStatus, 'pending'>,
      errors: outcome.errors,
      reportsStored: outcome.reportsStored,
      reportsDuplicate: outcome.reportsDuplicate,
      reportsForeign: outcome.reportsForeign,
    });
    await client.query('COMMIT');
    return outcome;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (isTransientDatabaseError(error)) throw error;
    client.release();
    released = true;
    return quarantineAfterInternalError(context, rawInputId, name, error);
  } finally {
    if (!released) client.release();
  }
}

/**
 * Marks an input that made the reader fail in an unexpected way as quarantined, so that one
 * poisonous input cannot stop the poller by being retried forever.
 */
async function quarantineAfterInternalError(
  context: IngestContext,
  rawInputId: number,
  name: string,
  error: unknown,
  code: 'internal-error' | 'repeated-failure' = 'internal-error',
): Promise<IngestOutcome> {
  const reason = (error as Error)?.message ?? String(error);
  const message =
    code === 'internal-error' ? `Internal error while reading the input: ${reason}` : reason;
  context.log.error({ err: error, rawInputId, name, code }, 'Input quarantined after a failure');
  const partError: PartError = { code, message, document: name };

  const client = await context.pool.connect();
  try {
    await client.query('BEGIN');
    await finishRawInput(client, rawInputId, {
      status: 'quarantined',
      errors: [partError],
      reportsStored: 0,
      reportsDuplicate: 0,
      reportsForeign: 0,
    });
    await client.query('COMMIT');
  } catch (finishError) {
    await client.query('ROLLBACK').catch(() => {});
    throw finishError;
  } finally {
    client.release();
  }
  return { ...emptyOutcome(rawInputId, 'quarantined'), errors: [partError] };
}

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);

/**
 * True for failures of the database rather than of the input: any error PostgreSQL reported
 * with a SQLSTATE, and lost or refused connections. The input is then retried later.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (isReportError(error)) return false;
  const code = (error as { code?: unknown })?.code;
  if (
    typeof code === 'string' &&
    (/^[0-9A-Z]{5}$/.test(code) || TRANSIENT_NETWORK_CODES.has(code))
  ) {
    return true;
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
    message,
  );
}

async function readAndStoreReports(
  context: IngestContext,
  client: pg.PoolClient,
  rawInputId: number,
  bytes: InputContent,
  name: string,
): Promise<IngestOutcome> {
  const outcome = emptyOutcome(rawInputId, 'done');
  let reportsRead = 0;

  try {
    for await (const part of readInput(bytes, name, context.limits)) {
      if (part.kind === 'error') {
        outcome.errors.push(toPartError(part.error));
        continue;
      }

      const document = part.path.join(' › ');
      await client.query('SAVEPOINT report');
      try {
        const stored = await storeReport(context, client, rawInputId, document, part);
        await client.query('RELEASE SAVEPOINT report');
        reportsRead += 1;
        if (stored === 'duplicate') {
          outcome.reportsDuplicate += 1;
          continue;
        }
        if (stored.isForeign) outcome.reportsForeign += 1;
        else outcome.reportsStored += 1;
        if (await isReportIdReused(client, stored.reporterOrg, stored.reportId)) {
          outcome.reportsReusedId += 1;
        }
        outcome.records += stored.recordCount;
        outcome.messages += stored.messageCount;
        outcome.storedReportIds.push(stored.id);
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT report');
        if (!isDataError(error)) throw error;
        outcome.errors.push(toPartError(error, document));
      }
    }
  } catch (error) {
    if (!isReportError(error)) throw error;
    outcome.errors.push(toPartError(error));
  }

  if (reportsRead === 0 && outcome.errors.length === 0) {
    outcome.errors.push({
      code: 'no-report',
      message: 'No aggregate report found',
      document: name,
    });
  }
  if (reportsRead === 0) outcome.status = 'quarantined';
  else if (outcome.errors.length > 0) outcome.status = 'partial';

  for (const error of outcome.errors) {
    context.log.warn({ rawInputId, code: error.code, document: error.document }, error.message);
  }
  return outcome;
}

async function storeReport(
  context: IngestContext,
  client: pg.PoolClient,
  rawInputId: number,
  document: string,
  part: { events: AsyncGenerator<ReportEvent>; warnings: string[] },
): Promise<(StoredReport & { reportId: string }) | 'duplicate'> {
  const { events } = part;
  let report: (StoredReport & { reportId: string }) | null = null;
  let writer: RecordWriter | null = null;

  try {
    for await (const event of events) {
      if (event.kind === 'header') {
        const isForeign = !isOwnedDomain(event.header.policy.domain, context.ownedDomains);
        const saved = await saveReportHeader(client, rawInputId, document, event.header, isForeign);
        // The same report is already stored: stop reading, since nothing of it will be kept.
        if (!saved) {
          await events.return(undefined);
          return 'duplicate';
        }
        report = { ...saved, reportId: event.header.metadata.reportId };
        writer = openRecordWriter(client, report, context.useCopy);
        continue;
      }
      await writer!.write(event.records);
    }

    if (!report || !writer) throw new Error(`Report reader ended without a header in ${document}`);
    await writer.finish();
  } catch (error) {
    await writer?.abort();
    throw error;
  }
  await saveReportTotals(client, report, part.warnings);
  return report;
}

/**
 * Errors that belong to the data: a report that cannot be read, or a value PostgreSQL rejects
 * (SQLSTATE classes 22 and 23). Anything else, such as a lost connection, is retried later.
 */
function isDataError(error: unknown): boolean {
  if (isReportError(error)) return true;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23)/.test(code);
}

function toPartError(error: unknown, document?: string): PartError {
  if (isReportError(error)) {
    return { code: error.code, message: error.message, document: error.document };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'rejected-by-database', message, document: document ?? null };
}
