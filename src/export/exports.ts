import type pg from 'pg';

import { streamRows } from '../store/cursor.js';
import { csvLine } from './csv.js';

export interface ExportFilter {
  from?: Date;
  to?: Date;
  domain?: string;
  includeForeign?: boolean;
}

export const REPORT_COLUMNS = [
  'org_name',
  'report_id',
  'domain',
  'begin',
  'end',
  'records',
  'messages',
  'dmarc_pass',
  'reporter_email',
  'policy_p',
  'policy_sp',
  'policy_np',
  'policy_pct',
  'version',
  'foreign',
  'warnings',
] as const;

export const RECORD_COLUMNS = [
  'org_name',
  'report_id',
  'begin',
  'end',
  'domain',
  'source_ip',
  'source_name',
  'service',
  'count',
  'disposition',
  'dkim_eval',
  'spf_eval',
  'header_from',
  'envelope_from',
  'dkim_domains',
  'dkim_selectors',
  'dkim_results',
  'spf_domains',
  'spf_results',
  'override_reasons',
  'envelope_to',
  'spf_scopes',
  'override_comments',
] as const;

function buildWhere(filter: ExportFilter, table: string): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (filter.from) {
    params.push(filter.from);
    conditions.push(`${table}.date_begin >= $${params.length}`);
  }
  if (filter.to) {
    params.push(filter.to);
    conditions.push(`${table}.date_begin < $${params.length}`);
  }
  if (filter.domain) {
    params.push(filter.domain.toLowerCase());
    conditions.push(
      `(${table}.domain = $${params.length} OR ${table}.domain LIKE '%.' || $${params.length})`,
    );
  }
  if (!filter.includeForeign) conditions.push(`NOT ${table}.is_foreign`);
  return { where: conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

type Row = Record<string, unknown>;

/** Streams the reports table, one row per report, in the export column order. */
export async function* exportReports(pool: pg.Pool, filter: ExportFilter): AsyncGenerator<Row[]> {
  const { where, params } = buildWhere(filter, 'reports');
  const sql = `
    SELECT reporter_org AS org_name, report_id, domain, date_begin AS begin, date_end AS "end",
           record_count AS records, message_count AS messages, pass_count AS dmarc_pass,
           reporter_email, policy_p, policy_sp, policy_np, policy_pct, version,
           is_foreign AS foreign, array_to_string(warnings, '; ') AS warnings
      FROM reports ${where}
     ORDER BY date_begin, reporter_org, report_id, id`;
  yield* streamRows<Row>(pool, sql, params);
}

interface AuthResultJson {
  domain?: string;
  selector?: string | null;
  result?: string;
  scope?: string | null;
  type?: string;
  comment?: string | null;
}

/** Streams records joined with their report, list cells joined with `;`. */
export async function* exportRecords(pool: pg.Pool, filter: ExportFilter): AsyncGenerator<Row[]> {
  const { where, params } = buildWhere(filter, 'records');
  const sql = `
    SELECT reports.reporter_org AS org_name, reports.report_id, reports.date_begin AS begin,
           reports.date_end AS "end", records.domain, host(records.source_ip) AS source_ip,
           records.source_ip AS source_inet, records.count, records.disposition,
           records.eval_dkim AS dkim_eval, records.eval_spf AS spf_eval, records.header_from,
           records.envelope_from, records.envelope_to, records.dkim, records.spf, records.reasons,
           source_hosts.ptr AS source_name, senders.service
      FROM records
      JOIN reports ON reports.id = records.report_ref
      -- Reverse DNS (forward-confirmed names only) and attribution are kept per source address
      -- and per sender, so that a catalog change never rewrites records.
      LEFT JOIN senders ON senders.sender_key = records.sender_key
      LEFT JOIN source_hosts ON source_hosts.ip = records.source_ip AND source_hosts.state = 'ok'
      ${where}
     ORDER BY records.date_begin, records.report_ref, records.id`;
  for await (const rows of streamRows<Row>(pool, sql, params)) {
    yield rows.map(shapeRecordRow);
  }
}

function shapeRecordRow(row: Row): Row {
  const dkim = (row.dkim as AuthResultJson[]) ?? [];
  const spf = (row.spf as AuthResultJson[]) ?? [];
  const reasons = (row.reasons as AuthResultJson[]) ?? [];
  return {
    org_name: row.org_name,
    report_id: row.report_id,
    begin: row.begin,
    end: row.end,
    domain: row.domain,
    source_ip: row.source_ip,
    source_name: row.source_name ?? null,
    service: row.service ?? null,
    count: row.count,
    disposition: row.disposition,
    dkim_eval: row.dkim_eval,
    spf_eval: row.spf_eval,
    header_from: row.header_from,
    envelope_from: row.envelope_from,
    dkim_domains: dkim.map((result) => result.domain ?? '').join(';'),
    dkim_selectors: dkim.map((result) => result.selector ?? '').join(';'),
    dkim_results: dkim.map((result) => result.result ?? '').join(';'),
    spf_domains: spf.map((result) => result.domain ?? '').join(';'),
    spf_results: spf.map((result) => result.result ?? '').join(';'),
    override_reasons: reasons.map((reason) => reason.type ?? '').join(';'),
    envelope_to: row.envelope_to,
    spf_scopes: spf.map((result) => result.scope ?? '').join(';'),
    override_comments: reasons.map((reason) => reason.comment ?? '').join(';'),
  };
}

/** Writes batches of rows as CSV (with a header line) or as one JSON array. */
export async function writeRows(
  batches: AsyncIterable<Row[]>,
  columns: readonly string[],
  format: 'csv' | 'json',
  write: (chunk: string) => Promise<void> | void,
): Promise<number> {
  let count = 0;
  if (format === 'csv') await write(csvLine([...columns]));
  else await write('[');

  for await (const rows of batches) {
    let chunk = '';
    for (const row of rows) {
      if (format === 'csv') {
        chunk += csvLine(columns.map((column) => row[column]));
      } else {
        const shaped = Object.fromEntries(columns.map((column) => [column, row[column] ?? null]));
        chunk += `${count === 0 ? '\n' : ',\n'}${JSON.stringify(shaped)}`;
      }
      count += 1;
    }
    await write(chunk);
  }

  if (format === 'json') await write(count === 0 ? ']\n' : '\n]\n');
  return count;
}
