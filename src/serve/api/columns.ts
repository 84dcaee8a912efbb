import { RECORD_COLUMNS, REPORT_COLUMNS } from '../../export/exports.js';
import { column, type CsvColumn } from '../csv-response.js';

type Row = Record<string, unknown>;

interface AuthResult {
  domain?: string;
  selector?: string | null;
  result?: string;
  scope?: string | null;
  type?: string;
  comment?: string | null;
}

function listOf(row: Row, key: string): AuthResult[] {
  return (row[key] as AuthResult[] | null) ?? [];
}

function pluck(key: string, field: keyof AuthResult): (row: Row) => string {
  return (row) =>
    listOf(row, key)
      .map((entry) => entry[field] ?? '')
      .join(';');
}

// Cells of `export records` that come from lists, which the dashboard rows carry as JSON.
// source_name and service come straight from the row, as the other columns do.
const RECORD_CELLS: Record<string, (row: Row) => unknown> = {
  dkim_domains: pluck('dkim', 'domain'),
  dkim_selectors: pluck('dkim', 'selector'),
  dkim_results: pluck('dkim', 'result'),
  spf_domains: pluck('spf', 'domain'),
  spf_results: pluck('spf', 'result'),
  spf_scopes: pluck('spf', 'scope'),
  override_reasons: pluck('reasons', 'type'),
  override_comments: pluck('reasons', 'comment'),
};

/** The columns of `dmarc-lens export reports`, then the failing messages and the report's id. */
export const REPORT_CSV: CsvColumn[] = [
  ...REPORT_COLUMNS.map((name) => column(name)),
  column('dmarc_fail'),
  column('id'),
];

/** The columns of `dmarc-lens export records`, then the DMARC result and the report's id. */
export const RECORD_CSV: CsvColumn[] = [
  ...RECORD_COLUMNS.map((name) => column(name, RECORD_CELLS[name])),
  column('dmarc_pass'),
  column('report_ref'),
];

export const SOURCE_CSV: CsvColumn[] = [
  'source_ip',
  'messages',
  'dmarc_pass',
  'dmarc_fail',
  'pass_rate',
  'reports',
  'reporters',
  'domains',
  'first_seen',
  'last_seen',
].map((name) => column(name));

export const DAILY_CSV: CsvColumn[] = ['day', 'messages', 'dmarc_pass', 'dmarc_fail'].map((name) =>
  column(name),
);

export const QUARANTINE_CSV: CsvColumn[] = [
  column('id'),
  column('name'),
  column('source'),
  column('status'),
  column('error_code'),
  column('error_message'),
  column('error_codes', (row) =>
    ((row.errors as Array<{ code?: string }>) ?? []).map((error) => error.code),
  ),
  column('attempts'),
  column('byte_size'),
  column('reports_stored'),
  column('received_at'),
  column('processed_at'),
];
