import type pg from 'pg';

import { streamRows } from './cursor.js';

/**
 * The filters every dashboard panel accepts. Days are calendar days in `timeZone`; `to` is
 * inclusive. Reports about domains outside DOMAINS (`is_foreign`) are left out of the team's
 * numbers unless `foreign` selects them alone.
 */
export interface DashboardFilter {
  from: string | null;
  to: string | null;
  domain: string | null;
  reporter: string | null;
  /** true: records that pass DMARC; false: records that fail; null: both. */
  dmarcPass: boolean | null;
  disposition: string | null;
  timeZone: string;
  foreign: boolean;
  /**
   * A catalog service name: only records of senders attributed to it, compared
   * case-insensitively. A report matches when one of its records does.
   */
  service?: string | null;
}

export type SortOrder = 'asc' | 'desc';

export interface PageRequest {
  page: number;
  pageSize: number;
  sort: string;
  order: SortOrder;
}

export interface Page<Row> {
  rows: Row[];
  total: number;
  page: number;
  pageSize: number;
  sort: string;
  order: SortOrder;
}

type Row = Record<string, unknown>;

// Every filtered query takes the filter as $1 to $9 in this order, so that one WHERE fragment
// serves all panels. A null parameter switches its condition off. Report values only ever
// reach PostgreSQL as parameters.
function filterParams(filter: DashboardFilter): unknown[] {
  return [
    filter.from,
    filter.to,
    filter.domain,
    filter.reporter,
    filter.dmarcPass,
    filter.disposition,
    filter.timeZone,
    filter.foreign,
    filter.service ?? null,
  ];
}

// Records whose sender a catalog service claims. The rollup worker stores each new sender, so
// records of a sender first seen in a report not rolled up yet match no service until then.
const SERVICE_SENDERS = `
  SELECT sender_key FROM senders WHERE lower(service) = lower($9::text)`;

// A domain filter matches the domain and its subdomains. `right()` instead of LIKE, so that
// `%` or `_` in the filter match only themselves.
const RECORD_FILTER = `
  rec.is_foreign = $8
  AND ($1::date IS NULL OR rec.date_begin >= ($1::date)::timestamp AT TIME ZONE $7::text)
  AND ($2::date IS NULL OR rec.date_begin < ($2::date + 1)::timestamp AT TIME ZONE $7::text)
  AND ($3::text IS NULL OR rec.domain = $3 OR right(rec.domain, length($3) + 1) = '.' || $3)
  AND ($4::text IS NULL OR rec.reporter_org = $4)
  AND ($5::boolean IS NULL OR rec.dmarc_pass = $5)
  AND ($6::text IS NULL OR rec.disposition = $6)
  AND ($9::text IS NULL OR rec.sender_key IN (${SERVICE_SENDERS}))`;

// A report matches the result, disposition and service filters when one of its records
// matches all three.
const REPORT_FILTER = `
  rep.is_foreign = $8
  AND ($1::date IS NULL OR rep.date_begin >= ($1::date)::timestamp AT TIME ZONE $7::text)
  AND ($2::date IS NULL OR rep.date_begin < ($2::date + 1)::timestamp AT TIME ZONE $7::text)
  AND ($3::text IS NULL OR rep.domain = $3 OR right(rep.domain, length($3) + 1) = '.' || $3)
  AND ($4::text IS NULL OR rep.reporter_org = $4)
  AND (($5::boolean IS NULL AND $6::text IS NULL AND $9::text IS NULL) OR EXISTS (
        SELECT 1 FROM records rec
         WHERE rec.report_ref = rep.id AND rec.date_begin = rep.date_begin
           AND ($5::boolean IS NULL OR rec.dmarc_pass = $5)
           AND ($6::text IS NULL OR rec.disposition = $6)
           AND ($9::text IS NULL OR rec.sender_key IN (${SERVICE_SENDERS}))))`;

/**
 * Builds an ORDER BY clause from a whitelist of sort keys. Only the constant expressions of
 * the whitelist reach the SQL text. The ascending tie-breaker keeps pages stable and rows of
 * equal rank in the order they were stored.
 */
function orderBy(sorts: Record<string, string>, request: PageRequest, tieBreaker: string): string {
  const expression = sorts[request.sort];
  if (!expression) throw new Error(`Unknown sort key ${JSON.stringify(request.sort)}`);
  const direction = request.order === 'asc' ? 'ASC' : 'DESC';
  return `ORDER BY ${expression} ${direction} NULLS LAST, ${tieBreaker} ASC`;
}

function pageOf<T>(rows: T[], total: number, request: PageRequest): Page<T> {
  return { rows, total, ...request };
}

function limitParams(request: PageRequest, position: number): { sql: string; params: number[] } {
  return {
    sql: `LIMIT $${position} OFFSET $${position + 1}`,
    params: [request.pageSize, (request.page - 1) * request.pageSize],
  };
}

function passRate(pass: number, messages: number): number | null {
  return messages > 0 ? pass / messages : null;
}

// ---------------------------------------------------------------------------------------------
// Overview

// The overview reads the daily rollup tables where they can serve the filter, so that it does
// not scan records. Rollups have UTC days and no split by disposition, result or service, so
// any other filter reads records. Reports that the rollup worker has not reached yet (rolled_up_at IS
// NULL) are read from records and added; each query runs in one snapshot, so a report is
// counted on one side only.
function rollupsCover(filter: DashboardFilter): boolean {
  return (
    filter.timeZone === 'UTC' &&
    filter.disposition === null &&
    filter.dmarcPass === null &&
    !filter.service
  );
}

// Parameters of the rollup queries, $1 to $5: from, to, domain, reporter, foreign.
function rollupParams(filter: DashboardFilter): unknown[] {
  return [filter.from, filter.to, filter.domain, filter.reporter, filter.foreign];
}

function rollupFilter(alias: string): string {
  return `
    ${alias}.is_foreign = $5
    AND ($1::date IS NULL OR ${alias}.day >= $1::date)
    AND ($2::date IS NULL OR ${alias}.day <= $2::date)
    AND ($3::text IS NULL OR ${alias}.domain = $3 OR right(${alias}.domain, length($3) + 1) = '.' || $3)
    AND ($4::text IS NULL OR ${alias}.reporter_org = $4)`;
}

// Records of the reports not rolled up yet, under the same five parameters.
const FRESH_RECORDS = `
  SELECT rec.*
    FROM reports rep
    JOIN records rec ON rec.report_ref = rep.id AND rec.date_begin = rep.date_begin
   WHERE rep.rolled_up_at IS NULL
     AND rec.is_foreign = $5
     AND ($1::date IS NULL OR rec.date_begin >= ($1::date)::timestamp AT TIME ZONE 'UTC')
     AND ($2::date IS NULL OR rec.date_begin < ($2::date + 1)::timestamp AT TIME ZONE 'UTC')
     AND ($3::text IS NULL OR rec.domain = $3 OR right(rec.domain, length($3) + 1) = '.' || $3)
     AND ($4::text IS NULL OR rec.reporter_org = $4)`;

const SUMMARY_TOTALS = `
  SELECT count(DISTINCT rec.report_ref)::int AS reports,
         count(*)::int AS records,
         coalesce(sum(rec.count), 0) AS messages,
         coalesce(sum(rec.count) FILTER (WHERE rec.dmarc_pass), 0) AS pass,
         count(DISTINCT rec.source_ip)::int AS sources,
         count(DISTINCT rec.domain)::int AS domains,
         count(DISTINCT rec.reporter_org)::int AS reporters
    FROM records rec
   WHERE ${RECORD_FILTER}`;

const SUMMARY_TOTALS_FROM_ROLLUPS = `
  WITH fresh AS (${FRESH_RECORDS}),
  rolled AS (
    SELECT coalesce(sum(stats.reports), 0) AS reports,
           coalesce(sum(stats.records), 0) AS records,
           coalesce(sum(stats.messages), 0) AS messages,
           coalesce(sum(stats.pass_messages), 0) AS pass
      FROM daily_domain_stats stats
     WHERE ${rollupFilter('stats')}
  ),
  source_ips AS (
    SELECT sender.source_ip
      FROM daily_sender_stats stats
      JOIN senders sender ON sender.sender_key = stats.sender_key
     WHERE ${rollupFilter('stats')}
    UNION
    SELECT source_ip FROM fresh
  ),
  names AS (
    SELECT stats.domain, stats.reporter_org FROM daily_domain_stats stats WHERE ${rollupFilter('stats')}
    UNION
    SELECT domain, reporter_org FROM fresh
  )
  SELECT (rolled.reports + (SELECT count(DISTINCT report_ref) FROM fresh))::int AS reports,
         (rolled.records + (SELECT count(*) FROM fresh))::int AS records,
         rolled.messages + (SELECT coalesce(sum(count), 0) FROM fresh) AS messages,
         rolled.pass + (SELECT coalesce(sum(count) FILTER (WHERE dmarc_pass), 0) FROM fresh) AS pass,
         (SELECT count(source_ip) FROM source_ips)::int AS sources,
         (SELECT count(DISTINCT domain) FROM names)::int AS domains,
         (SELECT count(DISTINCT reporter_org) FROM names)::int AS reporters
    FROM rolled`;

export interface SummaryTotals {
  reports: number;
  records: number;
  messages: number;
  pass: number;
  fail: number;
  passRate: number | null;
  sources: number;
  domains: number;
  reporters: number;
}

/** Finds the totals of the filtered window: reports, records, messages, pass and fail. */
export async function findSummaryTotals(
  pool: pg.Pool,
  filter: DashboardFilter,
): Promise<SummaryTotals> {
  const { rows } = rollupsCover(filter)
    ? await pool.query(SUMMARY_TOTALS_FROM_ROLLUPS, rollupParams(filter))
    : await pool.query(SUMMARY_TOTALS, filterParams(filter));
  const row = rows[0];
  return {
    reports: row.reports,
    records: row.records,
    messages: row.messages,
    pass: row.pass,
    fail: row.messages - row.pass,
    passRate: passRate(row.pass, row.messages),
    sources: row.sources,
    domains: row.domains,
    reporters: row.reporters,
  };
}

const MESSAGES_PER_DAY = `
  SELECT to_char((rec.date_begin AT TIME ZONE $7::text)::date, 'YYYY-MM-DD') AS day,
         coalesce(sum(rec.count) FILTER (WHERE rec.dmarc_pass), 0) AS pass,
         coalesce(sum(rec.count) FILTER (WHERE NOT rec.dmarc_pass), 0) AS fail
    FROM records rec
   WHERE ${RECORD_FILTER}
   GROUP BY 1
   ORDER BY 1`;

const MESSAGES_PER_DAY_FROM_ROLLUPS = `
  WITH fresh AS (${FRESH_RECORDS})
  SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(pass) AS pass, sum(fail) AS fail
    FROM (
      SELECT stats.day, stats.pass_messages AS pass, stats.messages - stats.pass_messages AS fail
        FROM daily_domain_stats stats
       WHERE ${rollupFilter('stats')}
      UNION ALL
      SELECT (date_begin AT TIME ZONE 'UTC')::date,
             CASE WHEN dmarc_pass THEN count ELSE 0 END,
             CASE WHEN dmarc_pass THEN 0 ELSE count END
        FROM fresh
    ) days
   GROUP BY day
   ORDER BY day`;

/** Labels and datasets for chart.js; days without reports are present with zeros. */
export interface DailySeries {
  labels: string[];
  pass: number[];
  fail: number[];
}

/** Finds messages per day of the report's begin date, split into DMARC pass and fail. */
export async function findMessagesPerDay(
  pool: pg.Pool,
  filter: DashboardFilter,
): Promise<DailySeries> {
  const { rows } = rollupsCover(filter)
    ? await pool.query<DailyRow>(MESSAGES_PER_DAY_FROM_ROLLUPS, rollupParams(filter))
    : await pool.query<DailyRow>(MESSAGES_PER_DAY, filterParams(filter));
  const byDay = new Map(rows.map((row) => [row.day, row]));
  const series: DailySeries = { labels: [], pass: [], fail: [] };
  if (rows.length === 0) return series;

  // Fill the gaps between the first and the last day, so that the chart's time axis is even.
  const first = filter.from && filter.from < rows[0].day ? filter.from : rows[0].day;
  const last = rows[rows.length - 1].day;
  for (let day = first; day <= last; day = nextDay(day)) {
    const row = byDay.get(day);
    series.labels.push(day);
    series.pass.push(row?.pass ?? 0);
    series.fail.push(row?.fail ?? 0);
  }
  return series;
}

interface DailyRow {
  day: string;
  pass: number;
  fail: number;
}

function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

// A message counts as attributed when its sender belongs to a catalog service. Senders that a
// provider claims outside the catalog, and new senders that the worker has not attributed yet,
// count as unattributed.
const MESSAGES_PER_DAY_BY_ATTRIBUTION = `
  SELECT to_char((rec.date_begin AT TIME ZONE $7::text)::date, 'YYYY-MM-DD') AS day,
         sender.service IS NOT NULL AS attributed,
         coalesce(sum(rec.count) FILTER (WHERE rec.dmarc_pass), 0) AS pass,
         coalesce(sum(rec.count) FILTER (WHERE NOT rec.dmarc_pass), 0) AS fail
    FROM records rec
    LEFT JOIN senders sender ON sender.sender_key = rec.sender_key
   WHERE ${RECORD_FILTER}
   GROUP BY 1, 2
   ORDER BY 1`;

const MESSAGES_PER_DAY_BY_ATTRIBUTION_FROM_ROLLUPS = `
  WITH fresh AS (${FRESH_RECORDS})
  SELECT to_char(days.day, 'YYYY-MM-DD') AS day, days.attributed,
         sum(days.pass) AS pass, sum(days.fail) AS fail
    FROM (
      SELECT stats.day, sender.service IS NOT NULL AS attributed,
             stats.pass_messages AS pass, stats.messages - stats.pass_messages AS fail
        FROM daily_sender_stats stats
        JOIN senders sender ON sender.sender_key = stats.sender_key
       WHERE ${rollupFilter('stats')}
      UNION ALL
      SELECT (fresh.date_begin AT TIME ZONE 'UTC')::date, sender.service IS NOT NULL,
             CASE WHEN fresh.dmarc_pass THEN fresh.count ELSE 0 END,
             CASE WHEN fresh.dmarc_pass THEN 0 ELSE fresh.count END
        FROM fresh
        LEFT JOIN senders sender ON sender.sender_key = fresh.sender_key
    ) days
   GROUP BY days.day, days.attributed
   ORDER BY days.day`;

/** Messages per day split into DMARC pass and fail, each for attributed and unattributed mail. */
export interface AttributionSeries {
  labels: string[];
  attributedPass: number[];
  attributedFail: number[];
  unattributedPass: number[];
  unattributedFail: number[];
}

/**
 * Finds messages per day of the report's begin date, split into DMARC pass and fail of mail
 * that a catalog service claims and of the rest. Days without reports are present with zeros.
 */
export async function findMessagesPerDayByAttribution(
  pool: pg.Pool,
  filter: DashboardFilter,
): Promise<AttributionSeries> {
  const { rows } = rollupsCover(filter)
    ? await pool.query<AttributionRow>(
        MESSAGES_PER_DAY_BY_ATTRIBUTION_FROM_ROLLUPS,
        rollupParams(filter),
      )
    : await pool.query<AttributionRow>(MESSAGES_PER_DAY_BY_ATTRIBUTION, filterParams(filter));
  const series: AttributionSeries = {
    labels: [],
    attributedPass: [],
    attributedFail: [],
    unattributedPass: [],
    unattributedFail: [],
  };
  if (rows.length === 0) return series;

  const byDay = new Map<string, AttributionRow[]>();
  for (const row of rows) byDay.set(row.day, [...(byDay.get(row.day) ?? []), row]);
  const sum = (dayRows: AttributionRow[], attributed: boolean, key: 'pass' | 'fail') =>
    dayRows
      .filter((row) => row.attributed === attributed)
      .reduce((total, row) => total + Number(row[key]), 0);

  const first = filter.from && filter.from < rows[0].day ? filter.from : rows[0].day;
  const last = rows[rows.length - 1].day;
  for (let day = first; day <= last; day = nextDay(day)) {
    const dayRows = byDay.get(day) ?? [];
    series.labels.push(day);
    series.attributedPass.push(sum(dayRows, true, 'pass'));
    series.attributedFail.push(sum(dayRows, true, 'fail'));
    series.unattributedPass.push(sum(dayRows, false, 'pass'));
    series.unattributedFail.push(sum(dayRows, false, 'fail'));
  }
  return series;
}

interface AttributionRow extends DailyRow {
  attributed: boolean;
}

// The policy of the latest report about each domain, joined to the domain's totals.
const LATEST_POLICY = `
  SELECT totals.domain, totals.messages, totals.pass, latest.policy_p, latest.policy_sp,
         latest.policy_np, latest.policy_pct, latest.date_begin AS policy_seen
    FROM totals
    LEFT JOIN LATERAL (
      SELECT rep.policy_p, rep.policy_sp, rep.policy_np, rep.policy_pct, rep.date_begin
        FROM reports rep
       WHERE rep.domain = totals.domain
       ORDER BY rep.date_begin DESC, rep.id DESC
       LIMIT 1
    ) latest ON true
   ORDER BY totals.messages DESC, totals.domain`;

const DOMAIN_POLICIES = `
  WITH totals AS (
    SELECT rec.domain,
           sum(rec.count) AS messages,
           coalesce(sum(rec.count) FILTER (WHERE rec.dmarc_pass), 0) AS pass
      FROM records rec
     WHERE ${RECORD_FILTER}
     GROUP BY rec.domain
  )
  ${LATEST_POLICY}`;

const DOMAIN_POLICIES_FROM_ROLLUPS = `
  WITH fresh AS (${FRESH_RECORDS}),
  totals AS (
    SELECT domain, sum(messages) AS messages, sum(pass) AS pass
      FROM (
        SELECT stats.domain, stats.messages, stats.pass_messages AS pass
          FROM daily_domain_stats stats
         WHERE ${rollupFilter('stats')}
        UNION ALL
        SELECT domain, count, CASE WHEN dmarc_pass THEN count ELSE 0 END FROM fresh
      ) domains
     GROUP BY domain
  )
  ${LATEST_POLICY}`;

/** Finds per policy domain the volume, DMARC pass rate and latest published policy. */
export async function findDomainPolicies(pool: pg.Pool, filter: DashboardFilter): Promise<Row[]> {
  const { rows } = rollupsCover(filter)
    ? await pool.query(DOMAIN_POLICIES_FROM_ROLLUPS, rollupParams(filter))
    : await pool.query(DOMAIN_POLICIES, filterParams(filter));
  return rows.map((row) => ({
    domain: row.domain,
    messages: row.messages,
    pass: row.pass,
    fail: row.messages - row.pass,
    passRate: passRate(row.pass, row.messages),
    policy: { p: row.policy_p, sp: row.policy_sp, np: row.policy_np, pct: row.policy_pct },
    policySeen: row.policy_seen,
  }));
}

const REPORTER_HEALTH = `
  SELECT rep.reporter_org, count(*)::int AS reports, max(rep.date_end) AS last_report_end,
         max(rep.stored_at) AS last_stored_at
    FROM reports rep
   WHERE NOT rep.is_foreign
   GROUP BY rep.reporter_org
   ORDER BY max(rep.stored_at) DESC, rep.reporter_org`;

const INPUT_HEALTH = `
  SELECT status, count(*)::int AS inputs, max(received_at) AS last_received_at
    FROM raw_inputs
   GROUP BY status`;

export interface IngestHealth {
  inputs: Record<'pending' | 'done' | 'partial' | 'quarantined', number>;
  lastReceivedAt: Date | null;
  reporters: Row[];
}

/** Finds ingestion health: inputs per status, the latest input and report per reporter. */
export async function findIngestHealth(pool: pg.Pool): Promise<IngestHealth> {
  const [inputs, reporters] = await Promise.all([
    pool.query(INPUT_HEALTH),
    pool.query(REPORTER_HEALTH),
  ]);
  const health: IngestHealth = {
    inputs: { pending: 0, done: 0, partial: 0, quarantined: 0 },
    lastReceivedAt: null,
    reporters: reporters.rows,
  };
  for (const row of inputs.rows) {
    health.inputs[row.status as keyof IngestHealth['inputs']] = row.inputs;
    if (!health.lastReceivedAt || row.last_received_at > health.lastReceivedAt) {
      health.lastReceivedAt = row.last_received_at;
    }
  }
  return health;
}

// Services in catalog order, so that the drop-down lists them as the catalog file does.
const FILTER_OPTIONS = `
  SELECT array(SELECT DISTINCT domain FROM reports WHERE is_foreign = $1 ORDER BY 1) AS domains,
         array(SELECT DISTINCT reporter_org FROM reports WHERE is_foreign = $1 ORDER BY 1) AS reporters,
         array(SELECT name FROM services ORDER BY position, id) AS services`;

/** Lists the domains and reporters present and the catalog's services, for the drop-downs. */
export async function findFilterOptions(
  pool: pg.Pool,
  foreign = false,
): Promise<{ domains: string[]; reporters: string[]; services: string[] }> {
  const { rows } = await pool.query(FILTER_OPTIONS, [foreign]);
  return { domains: rows[0].domains, reporters: rows[0].reporters, services: rows[0].services };
}

// ---------------------------------------------------------------------------------------------
// Reports

export const REPORT_SORTS: Record<string, string> = {
  begin: 'rep.date_begin',
  end: 'rep.date_end',
  reporter: 'rep.reporter_org',
  domain: 'rep.domain',
  report_id: 'rep.report_id',
  records: 'rep.record_count',
  messages: 'rep.message_count',
  dmarc_pass: 'rep.pass_count',
  dmarc_fail: '(rep.message_count - rep.pass_count)',
  pass_rate: 'rep.pass_count::float8 / nullif(rep.message_count, 0)',
  stored: 'rep.stored_at',
};

const REPORT_LIST_COLUMNS = `
  rep.id, rep.reporter_org AS org_name, rep.report_id, rep.domain, rep.date_begin AS begin,
  rep.date_end AS "end", rep.record_count AS records, rep.message_count AS messages,
  rep.pass_count AS dmarc_pass, rep.message_count - rep.pass_count AS dmarc_fail,
  rep.reporter_email, rep.policy_p, rep.policy_sp, rep.policy_np, rep.policy_pct, rep.version,
  rep.is_foreign AS foreign, array_to_string(rep.warnings, '; ') AS warnings, rep.stored_at`;

const SELECT_REPORTS = `SELECT ${REPORT_LIST_COLUMNS} FROM reports rep WHERE ${REPORT_FILTER}`;

const COUNT_REPORTS = `SELECT count(*)::int AS total FROM reports rep WHERE ${REPORT_FILTER}`;

function shapeReportRow(row: Row): Row {
  return { ...row, pass_rate: passRate(row.dmarc_pass as number, row.messages as number) };
}

/** Finds one page of reports, newest first by default. */
export async function findReports(
  pool: pg.Pool,
  filter: DashboardFilter,
  request: PageRequest,
): Promise<Page<Row>> {
  const params = filterParams(filter);
  const limit = limitParams(request, params.length + 1);
  const sql = `${SELECT_REPORTS} ${orderBy(REPORT_SORTS, request, 'rep.id')} ${limit.sql}`;
  const [page, count] = await Promise.all([
    pool.query(sql, [...params, ...limit.params]),
    pool.query(COUNT_REPORTS, params),
  ]);
  return pageOf(page.rows.map(shapeReportRow), count.rows[0].total, request);
}

/** Streams every report that matches, in the page order, for the CSV twin. */
export async function* streamReports(
  pool: pg.Pool,
  filter: DashboardFilter,
  request: Pick<PageRequest, 'sort' | 'order'>,
): AsyncGenerator<Row[]> {
  const sql = `${SELECT_REPORTS} ${orderBy(REPORT_SORTS, { ...request, page: 1, pageSize: 1 }, 'rep.id')}`;
  for await (const rows of streamRows<Row>(pool, sql, filterParams(filter))) {
    yield rows.map(shapeReportRow);
  }
}

const REPORT_DETAIL = `
  SELECT rep.id, rep.reporter_org AS org_name, rep.reporter_email, rep.reporter_extra_contact,
         rep.report_id, rep.date_begin AS begin, rep.date_end AS "end", rep.version,
         rep.namespace, rep.generator, rep.report_errors, rep.domain, rep.policy_adkim,
         rep.policy_aspf, rep.policy_p, rep.policy_sp, rep.policy_np, rep.policy_pct,
         rep.policy_fo, rep.policy_testing, rep.policy_discovery_method, rep.extensions,
         rep.warnings, rep.is_foreign AS foreign, rep.record_count AS records,
         rep.message_count AS messages, rep.pass_count AS dmarc_pass,
         rep.message_count - rep.pass_count AS dmarc_fail, rep.stored_at, rep.document,
         rep.raw_input_id, raw.name AS input_name, raw.source AS input_source,
         raw.received_at AS input_received_at
    FROM reports rep
    JOIN raw_inputs raw ON raw.id = rep.raw_input_id
   WHERE rep.id = $1`;

/** Finds a report's header and its input; null when no report has this id. */
export async function findReport(pool: pg.Pool, id: number): Promise<Row | null> {
  const { rows } = await pool.query(REPORT_DETAIL, [id]);
  return rows[0] ? shapeReportRow(rows[0]) : null;
}

const REPORT_SOURCE = `SELECT raw_input_id, document FROM reports WHERE id = $1`;

/** Finds the raw input a report came from and the report's path inside it. */
export async function findReportSource(
  pool: pg.Pool,
  id: number,
): Promise<{ rawInputId: number; document: string } | null> {
  const { rows } = await pool.query(REPORT_SOURCE, [id]);
  return rows[0] ? { rawInputId: rows[0].raw_input_id, document: rows[0].document } : null;
}

// ---------------------------------------------------------------------------------------------
// Records

export const RECORD_SORTS: Record<string, string> = {
  begin: 'rec.date_begin',
  reporter: 'rec.reporter_org',
  domain: 'rec.domain',
  source_ip: 'rec.source_ip',
  count: 'rec.count',
  disposition: 'rec.disposition',
  dkim_eval: 'rec.eval_dkim',
  spf_eval: 'rec.eval_spf',
  dmarc_pass: 'rec.dmarc_pass',
  header_from: 'rec.header_from',
  source_name: 'source_host.ptr',
  service: 'sender.service',
};

// Within one report, `position` is the order of the report's <record> elements.
export const RECORD_SORTS_IN_REPORT: Record<string, string> = {
  ...RECORD_SORTS,
  position: 'rec.id',
};

const RECORD_COLUMNS = `
  rec.id, rec.report_ref, rep.reporter_org AS org_name, rep.report_id, rec.date_begin AS begin,
  rep.date_end AS "end", rec.domain, host(rec.source_ip) AS source_ip,
  source_host.ptr AS source_name, sender.service, rec.count, rec.disposition,
  rec.eval_dkim AS dkim_eval, rec.eval_spf AS spf_eval, rec.dmarc_pass, rec.header_from,
  rec.envelope_from, rec.envelope_to, rec.dkim, rec.spf, rec.reasons`;

// Reverse DNS (forward-confirmed names only) is kept per address and attribution per sender,
// as in `export records`. A sender first seen in a report not rolled up yet has no row in
// senders, so its records show no service until the rollup worker stores it.
const RECORD_JOINS = `
  JOIN reports rep ON rep.id = rec.report_ref
  LEFT JOIN senders sender ON sender.sender_key = rec.sender_key
  LEFT JOIN source_hosts source_host
         ON source_host.ip = rec.source_ip AND source_host.state = 'ok'`;

// The records list adds the sending address ($10) to the common nine.
const RECORD_LIST_FILTER = `
  ${RECORD_FILTER}
  AND ($10::inet IS NULL OR rec.source_ip = $10::inet)`;

const SELECT_RECORDS = `
  SELECT ${RECORD_COLUMNS}
    FROM records rec
    ${RECORD_JOINS}
   WHERE ${RECORD_LIST_FILTER}`;

const COUNT_RECORDS = `
  SELECT count(*)::int AS total
    FROM records rec
   WHERE ${RECORD_LIST_FILTER}`;

// Records of one report; date_begin lets PostgreSQL read one partition only.
const SELECT_REPORT_RECORDS = `
  SELECT ${RECORD_COLUMNS}
    FROM records rec
    ${RECORD_JOINS}
   WHERE rec.report_ref = $1
     AND rec.date_begin = (SELECT date_begin FROM reports WHERE id = $1)`;

const COUNT_REPORT_RECORDS = `SELECT record_count AS total FROM reports WHERE id = $1`;

function recordParams(filter: DashboardFilter, sourceIp: string | null): unknown[] {
  return [...filterParams(filter), sourceIp];
}

/** Finds one page of records, optionally from one sending address. */
export async function findRecords(
  pool: pg.Pool,
  filter: DashboardFilter,
  sourceIp: string | null,
  request: PageRequest,
): Promise<Page<Row>> {
  const params = recordParams(filter, sourceIp);
  const limit = limitParams(request, params.length + 1);
  const sql = `${SELECT_RECORDS} ${orderBy(RECORD_SORTS, request, 'rec.id')} ${limit.sql}`;
  const [page, count] = await Promise.all([
    pool.query(sql, [...params, ...limit.params]),
    pool.query(COUNT_RECORDS, params),
  ]);
  return pageOf(page.rows, count.rows[0].total, request);
}

/** Streams every record that matches, in the page order, for the CSV twin. */
export function streamRecords(
  pool: pg.Pool,
  filter: DashboardFilter,
  sourceIp: string | null,
  request: Pick<PageRequest, 'sort' | 'order'>,
): AsyncGenerator<Row[]> {
  const sql = `${SELECT_RECORDS} ${orderBy(RECORD_SORTS, { ...request, page: 1, pageSize: 1 }, 'rec.id')}`;
  return streamRows<Row>(pool, sql, recordParams(filter, sourceIp));
}

/** Finds one page of one report's records, in the report's own order by default. */
export async function findReportRecords(
  pool: pg.Pool,
  reportId: number,
  request: PageRequest,
): Promise<Page<Row>> {
  const limit = limitParams(request, 2);
  const sql = `${SELECT_REPORT_RECORDS} ${orderBy(RECORD_SORTS_IN_REPORT, request, 'rec.id')} ${limit.sql}`;
  const [page, count] = await Promise.all([
    pool.query(sql, [reportId, ...limit.params]),
    pool.query(COUNT_REPORT_RECORDS, [reportId]),
  ]);
  return pageOf(page.rows, count.rows[0]?.total ?? 0, request);
}

/** Streams every record of one report, for the CSV twin of the report detail. */
export function streamReportRecords(
  pool: pg.Pool,
  reportId: number,
  request: Pick<PageRequest, 'sort' | 'order'>,
): AsyncGenerator<Row[]> {
  const order = orderBy(RECORD_SORTS_IN_REPORT, { ...request, page: 1, pageSize: 1 }, 'rec.id');
  return streamRows<Row>(pool, `${SELECT_REPORT_RECORDS} ${order}`, [reportId]);
}

// ---------------------------------------------------------------------------------------------
// Sources

export const SOURCE_SORTS: Record<string, string> = {
  source_ip: 'sources.source_inet',
  messages: 'sources.messages',
  dmarc_pass: 'sources.dmarc_pass',
  dmarc_fail: 'sources.dmarc_fail',
  pass_rate: 'sources.pass_rate',
  reports: 'sources.reports',
  first_seen: 'sources.first_seen',
  last_seen: 'sources.last_seen',
};

const SELECT_SOURCES = `
  SELECT * FROM (
    SELECT rec.source_ip AS source_inet,
           host(rec.source_ip) AS source_ip,
           sum(rec.count) AS messages,
           coalesce(sum(rec.count) FILTER (WHERE rec.dmarc_pass), 0) AS dmarc_pass,
           coalesce(sum(rec.count) FILTER (WHERE NOT rec.dmarc_pass), 0) AS dmarc_fail,
           (coalesce(sum(rec.count) FILTER (WHERE rec.dmarc_pass), 0))::float8
             / nullif(sum(rec.count), 0) AS pass_rate,
           count(DISTINCT rec.report_ref)::int AS reports,
           count(DISTINCT rec.reporter_org)::int AS reporters,
           array_agg(DISTINCT rec.domain) AS domains,
           min(rec.date_begin) AS first_seen,
           max(rec.date_begin) AS last_seen
      FROM records rec
     WHERE ${RECORD_FILTER}
     GROUP BY rec.source_ip
  ) sources`;

const COUNT_SOURCES = `
  SELECT count(*)::int AS total
    FROM (SELECT 1 FROM records rec WHERE ${RECORD_FILTER} GROUP BY rec.source_ip) sources`;

function shapeSourceRow(row: Row): Row {
  const { source_inet: _inet, ...rest } = row;
  return { ...rest, domains: [...((row.domains as string[]) ?? [])].sort() };
}

/** Finds one page of sending addresses with volume, pass rate and first and last report. */
export async function findSources(
  pool: pg.Pool,
  filter: DashboardFilter,
  request: PageRequest,
): Promise<Page<Row>> {
  const params = filterParams(filter);
  const limit = limitParams(request, params.length + 1);
  const sql = `${SELECT_SOURCES} ${orderBy(SOURCE_SORTS, request, 'sources.source_inet')} ${limit.sql}`;
  const [page, count] = await Promise.all([
    pool.query(sql, [...params, ...limit.params]),
    pool.query(COUNT_SOURCES, params),
  ]);
  return pageOf(page.rows.map(shapeSourceRow), count.rows[0].total, request);
}

/** Streams every sending address that matches, for the CSV twin. */
export async function* streamSources(
  pool: pg.Pool,
  filter: DashboardFilter,
  request: Pick<PageRequest, 'sort' | 'order'>,
): AsyncGenerator<Row[]> {
  const order = orderBy(SOURCE_SORTS, { ...request, page: 1, pageSize: 1 }, 'sources.source_inet');
  for await (const rows of streamRows<Row>(
    pool,
    `${SELECT_SOURCES} ${order}`,
    filterParams(filter),
  )) {
    yield rows.map(shapeSourceRow);
  }
}

/** Finds the sources with the most failing messages, for the overview. */
export async function findTopFailingSources(
  pool: pg.Pool,
  filter: DashboardFilter,
  limit = 10,
): Promise<Row[]> {
  const page = await findSources(pool, filter, {
    page: 1,
    pageSize: limit,
    sort: 'dmarc_fail',
    order: 'desc',
  });
  return page.rows.filter((row) => (row.dmarc_fail as number) > 0);
}

// ---------------------------------------------------------------------------------------------
// Quarantine

/** Filter of the quarantine list: days in `timeZone` on the date the input was received. */
export interface QuarantineFilter {
  from: string | null;
  to: string | null;
  timeZone: string;
}

export const QUARANTINE_SORTS: Record<string, string> = {
  received: 'received_at',
  processed: 'processed_at',
  name: 'name',
  source: 'source',
  status: 'status',
  error_code: 'error_code',
  attempts: 'attempts',
  size: 'byte_size',
};

const SELECT_QUARANTINE = `
  SELECT id, name, source, origin, status, error_code, error_message, errors, attempts,
         byte_size, reports_stored, received_at, processed_at
    FROM raw_inputs
   WHERE status IN ('quarantined', 'partial')
     AND ($1::date IS NULL OR received_at >= ($1::date)::timestamp AT TIME ZONE $3::text)
     AND ($2::date IS NULL OR received_at < ($2::date + 1)::timestamp AT TIME ZONE $3::text)`;

const COUNT_QUARANTINE = `SELECT count(*)::int AS total FROM (${SELECT_QUARANTINE}) inputs`;

function quarantineParams(filter: QuarantineFilter): unknown[] {
  return [filter.from, filter.to, filter.timeZone];
}

/** Finds one page of inputs that were quarantined or only partly read, with their errors. */
export async function findQuarantine(
  pool: pg.Pool,
  filter: QuarantineFilter,
  request: PageRequest,
): Promise<Page<Row>> {
  const params = quarantineParams(filter);
  const limit = limitParams(request, params.length + 1);
  const sql = `${SELECT_QUARANTINE} ${orderBy(QUARANTINE_SORTS, request, 'id')} ${limit.sql}`;
  const [page, count] = await Promise.all([
    pool.query(sql, [...params, ...limit.params]),
    pool.query(COUNT_QUARANTINE, params),
  ]);
  return pageOf(page.rows, count.rows[0].total, request);
}

/** Streams the quarantine list, for the CSV twin. */
export function streamQuarantine(
  pool: pg.Pool,
  filter: QuarantineFilter,
  request: Pick<PageRequest, 'sort' | 'order'>,
): AsyncGenerator<Row[]> {
  const order = orderBy(QUARANTINE_SORTS, { ...request, page: 1, pageSize: 1 }, 'id');
  return streamRows<Row>(pool, `${SELECT_QUARANTINE} ${order}`, quarantineParams(filter));
}

const REOPEN_INPUT = `
  UPDATE raw_inputs SET status = 'pending'
   WHERE id = $1 AND status IN ('quarantined', 'partial')
  RETURNING id`;

const REOPEN_INPUTS = `
  UPDATE raw_inputs SET status = 'pending'
   WHERE id IN (
     SELECT id FROM raw_inputs
      WHERE status IN ('quarantined', 'partial')
      ORDER BY id
      LIMIT $1
      FOR UPDATE SKIP LOCKED)
  RETURNING id`;

const COUNT_OPEN_INPUTS = `
  SELECT count(*)::int AS total FROM raw_inputs WHERE status IN ('quarantined', 'partial')`;

const FIND_INPUT_STATUS = 'SELECT status FROM raw_inputs WHERE id = $1';

/**
 * Puts one quarantined or partly read input back to pending so that the pipeline reads it
 * again. Returns false when it is not in the quarantine (unknown id, or already done).
 */
export async function reopenQuarantinedInput(pool: pg.Pool, id: number): Promise<boolean> {
  const { rows } = await pool.query(REOPEN_INPUT, [id]);
  return rows.length > 0;
}

/** Puts up to `limit` quarantined or partly read inputs back to pending; returns their ids. */
export async function reopenQuarantinedInputs(pool: pg.Pool, limit: number): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(REOPEN_INPUTS, [limit]);
  return rows.map((row) => row.id).sort((a, b) => a - b);
}

/** Counts the inputs still quarantined or partly read. */
export async function countQuarantinedInputs(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query(COUNT_OPEN_INPUTS);
  return rows[0].total;
}

/** Finds the status of a raw input; null when no input has this id. */
export async function findRawInputStatus(pool: pg.Pool, id: number): Promise<string | null> {
  const { rows } = await pool.query(FIND_INPUT_STATUS, [id]);
  return rows[0]?.status ?? null;
}

const FIND_RAW_INPUT_NAME = 'SELECT name, byte_size FROM raw_inputs WHERE id = $1';

/** Finds a raw input's name and size; null when no input has this id. */
export async function findRawInputName(
  pool: pg.Pool,
  id: number,
): Promise<{ name: string; byteSize: number } | null> {
  const { rows } = await pool.query(FIND_RAW_INPUT_NAME, [id]);
  return rows[0] ? { name: rows[0].name, byteSize: rows[0].byte_size } : null;
}

// ---------------------------------------------------------------------------------------------
// Metrics

const METRIC_INPUTS = 'SELECT status, count(*)::int AS inputs FROM raw_inputs GROUP BY status';

const METRIC_REPORTS = `
  SELECT is_foreign, count(*)::int AS reports, coalesce(sum(record_count), 0) AS records,
         coalesce(sum(message_count), 0) AS messages, coalesce(sum(pass_count), 0) AS pass
    FROM reports
   GROUP BY is_foreign`;

export interface StoredCounts {
  inputs: Array<{ status: string; inputs: number }>;
  reports: Array<{
    foreign: boolean;
    reports: number;
    records: number;
    messages: number;
    pass: number;
  }>;
}

/** Counts for /metrics, from the reports' totals so that no scan of records is needed. */
export async function findStoredCounts(pool: pg.Pool): Promise<StoredCounts> {
  const [inputs, reports] = await Promise.all([
    pool.query(METRIC_INPUTS),
    pool.query(METRIC_REPORTS),
  ]);
  return {
    inputs: inputs.rows,
    reports: reports.rows.map((row) => ({
      foreign: row.is_foreign,
      reports: row.reports,
      records: row.records,
      messages: row.messages,
      pass: row.pass,
    })),
  };
}
