import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

import { isDmarcPass, type ReportHeader, type ReportRecord } from '../domain/report.js';

const INSERT_REPORT = `
  INSERT INTO reports (
    raw_input_id, document, reporter_org, reporter_email, reporter_extra_contact, report_id,
    date_begin, date_end, version, namespace, generator, report_errors, domain,
    policy_adkim, policy_aspf, policy_p, policy_sp, policy_np, policy_pct, policy_fo,
    policy_testing, policy_discovery_method, extensions, warnings, is_foreign
  ) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
    $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25
  )
  ON CONFLICT (reporter_org, report_id, domain, date_begin, date_end) DO NOTHING
  RETURNING id`;

const INSERT_RECORDS = `
  INSERT INTO records (
    report_ref, date_begin, domain, reporter_org, is_foreign,
    source_ip, count, disposition, eval_dkim, eval_spf, dmarc_pass,
    header_from, envelope_from, envelope_to, dkim, spf, reasons, extensions, sender_key
  )
  SELECT $1, $2, $3, $4, $5, *
    FROM unnest(
      $6::inet[], $7::integer[], $8::text[], $9::text[], $10::text[], $11::boolean[],
      $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::jsonb[], $17::jsonb[], $18::jsonb[],
      $19::uuid[]
    )`;

const RECORD_COLUMNS = `report_ref, date_begin, domain, reporter_org, is_foreign,
    source_ip, count, disposition, eval_dkim, eval_spf, dmarc_pass,
    header_from, envelope_from, envelope_to, dkim, spf, reasons, extensions, sender_key`;

const COPY_RECORDS = `COPY records (${RECORD_COLUMNS}) FROM STDIN`;

const UPDATE_REPORT_TOTALS = `
  UPDATE reports SET record_count = $2, message_count = $3, pass_count = $4, warnings = $5
   WHERE id = $1`;

const FIND_SAME_REPORT_ID = `
  SELECT count(*)::int AS n FROM reports WHERE reporter_org = $1 AND report_id = $2`;

export interface StoredReport {
  id: number;
  domain: string;
  dateBegin: Date;
  reporterOrg: string;
  isForeign: boolean;
  recordCount: number;
  messageCount: number;
  passCount: number;
}

/**
 * Inserts a report header. Returns null when the same report (reporter, report_id, domain and
 * date range) is already stored, which makes a resend change nothing.
 */
export async function saveReportHeader(
  client: pg.PoolClient,
  rawInputId: number,
  document: string,
  header: ReportHeader,
  isForeign: boolean,
): Promise<StoredReport | null> {
  const { metadata, policy } = header;
  const { rows } = await client.query<{ id: number }>(INSERT_REPORT, [
    rawInputId,
    document,
    metadata.orgName,
    metadata.email,
    metadata.extraContactInfo,
    metadata.reportId,
    metadata.dateBegin,
    metadata.dateEnd,
    header.version,
    header.namespace,
    metadata.generator,
    metadata.errors,
    policy.domain,
    policy.adkim,
    policy.aspf,
    policy.p,
    policy.sp,
    policy.np,
    policy.pct,
    policy.fo,
    policy.testing,
    policy.discoveryMethod,
    header.extensions ? JSON.stringify(header.extensions) : null,
    header.warnings,
    isForeign,
  ]);
  if (rows.length === 0) return null;
  return {
    id: rows[0].id,
    domain: policy.domain,
    dateBegin: metadata.dateBegin,
    reporterOrg: metadata.orgName,
    isForeign,
    recordCount: 0,
    messageCount: 0,
    passCount: 0,
  };
}

/** True when the reporter already used this report_id for another date range or domain. */
export async function isReportIdReused(
  client: pg.PoolClient,
  reporterOrg: string,
  reportId: string,
): Promise<boolean> {
  const { rows } = await client.query<{ n: number }>(FIND_SAME_REPORT_ID, [reporterOrg, reportId]);
  return rows[0].n > 1;
}

/**
 * Derives the key of a record's sender: a digest of the source address, identifiers and DKIM and SPF
 * results. MD5 serves as a fast, well-spread 128-bit key here, not for security: a collision
 * would only merge two senders' attribution.
 */
export function senderKey(record: ReportRecord, dkimJson: string, spfJson: string): string {
  const hex = createHash('md5')
    .update(
      `${record.sourceIp ?? ''}\u0000${record.headerFrom ?? ''}\u0000${record.envelopeFrom ?? ''}` +
        `\u0000${dkimJson}\u0000${spfJson}`,
    )
    .digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Streams a report's records into the database while the report is still being read. */
export interface RecordWriter {
  write(records: ReportRecord[]): Promise<void>;
  /** Waits until every record written so far is in the database. */
  finish(): Promise<void>;
  /** Abandons the records (a COPY is cancelled) so that the connection can roll back. */
  abort(): Promise<void>;
}

/**
 * Opens a writer for a report's records: one COPY stream on PostgreSQL, which is the fastest
 * way in, or multi-row unnest inserts where COPY is unavailable (PGlite's socket server does
 * not speak the COPY sub-protocol). Either way, one batch is written while the next is parsed.
 */
export function openRecordWriter(
  client: pg.PoolClient,
  report: StoredReport,
  useCopy: boolean,
): RecordWriter {
  return useCopy ? new CopyRecordWriter(client, report) : new InsertRecordWriter(client, report);
}

class InsertRecordWriter implements RecordWriter {
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: pg.PoolClient,
    private readonly report: StoredReport,
  ) {}

  async write(records: ReportRecord[]): Promise<void> {
    await this.inFlight;
    const insert = saveRecords(this.client, this.report, records);
    // Awaited by the next write or by finish(); this only keeps Node from reporting it early.
    insert.catch(() => {});
    this.inFlight = insert;
  }

  finish(): Promise<void> {
    return this.inFlight;
  }

  async abort(): Promise<void> {
    await this.inFlight.catch(() => {});
  }
}

class CopyRecordWriter implements RecordWriter {
  private readonly stream: ReturnType<typeof copyFrom>;
  private failure: Error | null = null;

  constructor(
    client: pg.PoolClient,
    private readonly report: StoredReport,
  ) {
    this.stream = client.query(copyFrom(COPY_RECORDS));
    this.stream.on('error', (error: Error) => (this.failure ??= error));
  }

  async write(records: ReportRecord[]): Promise<void> {
    if (this.failure) throw this.failure;
    const report = this.report;
    const constant = `${report.id}\t${report.dateBegin.toISOString()}\t${copyText(report.domain)}\t${copyText(report.reporterOrg)}\t${report.isForeign ? 't' : 'f'}`;
    let text = '';
    for (const record of records) {
      const pass = isDmarcPass(record);
      const dkim = JSON.stringify(record.dkim);
      const spf = JSON.stringify(record.spf);
      text +=
        `${constant}\t${copyText(record.sourceIp)}\t${record.count}\t${copyText(record.disposition)}` +
        `\t${copyText(record.evalDkim)}\t${copyText(record.evalSpf)}\t${pass ? 't' : 'f'}` +
        `\t${copyText(record.headerFrom)}\t${copyText(record.envelopeFrom)}\t${copyText(record.envelopeTo)}` +
        `\t${copyText(dkim)}\t${copyText(spf)}\t${copyText(JSON.stringify(record.reasons))}` +
        `\t${record.extensions ? copyText(JSON.stringify(record.extensions)) : '\\N'}` +
        `\t${senderKey(record, dkim, spf)}\n`;
      report.recordCount += 1;
      report.messageCount += record.count;
      if (pass) report.passCount += record.count;
    }
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  // pg-copy-streams 7 reports a failed COPY, a lost connection included, with an 'error' event
  // and leaves the stream open. Ending, awaiting or destroying that stream never completes when
  // the server had not yet answered the COPY, so a stream that failed is left alone.
  async finish(): Promise<void> {
    if (this.failure) throw this.failure;
    this.stream.end();
    await finished(this.stream);
    if (this.failure) throw this.failure;
  }

  async abort(): Promise<void> {
    if (this.stream.destroyed || this.failure) return;
    // Destroying the stream sends CopyFail, which ends the COPY with an error on the server.
    this.stream.destroy(new Error('Report abandoned while its records were being copied'));
    await finished(this.stream).catch(() => {});
  }
}

/** Escapes a value for COPY's text format: backslash, tab and line breaks escaped, null as \N. */
function copyText(value: string | null): string {
  if (value === null) return '\\N';
  if (!/[\\\t\n\r]/.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (char) => COPY_ESCAPES[char]);
}

const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

/** Appends a batch of records to a stored report with one multi-row insert. */
export async function saveRecords(
  client: pg.PoolClient,
  report: StoredReport,
  records: ReportRecord[],
): Promise<void> {
  const columns = {
    sourceIp: [] as Array<string | null>,
    count: [] as number[],
    disposition: [] as Array<string | null>,
    evalDkim: [] as Array<string | null>,
    evalSpf: [] as Array<string | null>,
    dmarcPass: [] as boolean[],
    headerFrom: [] as Array<string | null>,
    envelopeFrom: [] as Array<string | null>,
    envelopeTo: [] as Array<string | null>,
    dkim: [] as string[],
    spf: [] as string[],
    reasons: [] as string[],
    extensions: [] as Array<string | null>,
    senderKey: [] as string[],
  };

  for (const record of records) {
    const pass = isDmarcPass(record);
    columns.sourceIp.push(record.sourceIp);
    columns.count.push(record.count);
    columns.disposition.push(record.disposition);
    columns.evalDkim.push(record.evalDkim);
    columns.evalSpf.push(record.evalSpf);
    columns.dmarcPass.push(pass);
    columns.headerFrom.push(record.headerFrom);
    columns.envelopeFrom.push(record.envelopeFrom);
    columns.envelopeTo.push(record.envelopeTo);
    const dkim = JSON.stringify(record.dkim);
    const spf = JSON.stringify(record.spf);
    columns.dkim.push(dkim);
    columns.spf.push(spf);
    columns.senderKey.push(senderKey(record, dkim, spf));
    columns.reasons.push(JSON.stringify(record.reasons));
    columns.extensions.push(record.extensions ? JSON.stringify(record.extensions) : null);

    report.recordCount += 1;
    report.messageCount += record.count;
    if (pass) report.passCount += record.count;
  }

  await client.query(INSERT_RECORDS, [
    report.id,
    report.dateBegin,
    report.domain,
    report.reporterOrg,
    report.isForeign,
    columns.sourceIp,
    columns.count,
    columns.disposition,
    columns.evalDkim,
    columns.evalSpf,
    columns.dmarcPass,
    columns.headerFrom,
    columns.envelopeFrom,
    columns.envelopeTo,
    columns.dkim,
    columns.spf,
    columns.reasons,
    columns.extensions,
    columns.senderKey,
  ]);
}

/** Stores the totals counted while the records streamed in, and warnings raised meanwhile. */
export async function saveReportTotals(
  client: pg.PoolClient,
  report: StoredReport,
  warnings: string[],
): Promise<void> {
  await client.query(UPDATE_REPORT_TOTALS, [
    report.id,
    report.recordCount,
    report.messageCount,
    report.passCount,
    warnings,
  ]);
}
