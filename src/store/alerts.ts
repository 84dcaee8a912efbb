/**
 * Alert history, deliveries, digests and rule settings, and the queries the alert rules read
 * from the stored reports. Days are report days: the UTC day of a report's date_begin, as in
 * the daily tables, passed as YYYY-MM-DD.
 */
import type pg from 'pg';

type Queryable = pg.Pool | pg.PoolClient;

// Attribution has run on a sender once attributed_version is set. Until then its service is
// unknown rather than absent, and rules about unattributed mail leave it out.
const UNATTRIBUTED = 's.service IS NULL AND s.attributed_version IS NOT NULL';

// The first report day on which any sender from the address appeared.
const FIRST_SEEN_BY_IP = `
  first_seen AS (
    SELECT source_ip, min(first_seen) AS first_seen FROM senders GROUP BY source_ip
  )`;

const UNATTRIBUTED_SOURCES = `
  WITH ${FIRST_SEEN_BY_IP}
  SELECT st.domain, host(s.source_ip) AS source_ip,
         sum(st.messages)::bigint AS messages,
         sum(st.pass_messages)::bigint AS pass_messages,
         count(DISTINCT st.reporter_org)::int AS reporters,
         min(f.first_seen) AS first_seen,
         array_remove(array_agg(DISTINCT s.header_from), NULL) AS header_from,
         array_remove(array_agg(DISTINCT s.provider), NULL) AS providers
    FROM daily_sender_stats st
    JOIN senders s USING (sender_key)
    LEFT JOIN first_seen f ON f.source_ip = s.source_ip
   WHERE st.day BETWEEN $1 AND $2 AND NOT st.is_foreign AND ${UNATTRIBUTED}
   GROUP BY st.domain, s.source_ip
   ORDER BY st.domain, sum(st.messages - st.pass_messages) DESC, sum(st.messages) DESC`;

/** Unattributed mail from one address about one domain over a range of days. */
export interface SourceActivity {
  domain: string;
  /** Null when reporters left `<source_ip>` empty. */
  sourceIp: string | null;
  messages: number;
  passMessages: number;
  reporters: number;
  firstSeen: Date;
  headerFrom: string[];
  providers: string[];
}

/** Unattributed sources per domain with their mail between two report days, failing first. */
export async function findUnattributedSources(
  pool: Queryable,
  from: string,
  to: string,
): Promise<SourceActivity[]> {
  const { rows } = await pool.query(UNATTRIBUTED_SOURCES, [from, to]);
  return rows.map((row) => ({
    domain: row.domain,
    sourceIp: row.source_ip,
    messages: row.messages,
    passMessages: row.pass_messages,
    reporters: row.reporters,
    firstSeen: row.first_seen,
    headerFrom: row.header_from,
    providers: row.providers,
  }));
}

const SERVICE_PASS_RATES = `
  SELECT st.domain, s.service,
         coalesce(sum(st.messages) FILTER (WHERE st.day >= $2), 0)::bigint AS messages,
         coalesce(sum(st.pass_messages) FILTER (WHERE st.day >= $2), 0)::bigint AS pass_messages,
         coalesce(sum(st.messages) FILTER (WHERE st.day < $2), 0)::bigint AS baseline_messages,
         coalesce(sum(st.pass_messages) FILTER (WHERE st.day < $2), 0)::bigint AS baseline_pass
    FROM daily_sender_stats st
    JOIN senders s USING (sender_key)
   WHERE st.day BETWEEN $1 AND $3 AND NOT st.is_foreign AND s.service IS NOT NULL
   GROUP BY st.domain, s.service
   ORDER BY st.domain, s.service`;

/** A service's mail about one domain in the recent window and in the baseline before it. */
export interface ServicePassRate {
  domain: string;
  service: string;
  messages: number;
  passMessages: number;
  baselineMessages: number;
  baselinePass: number;
}

/**
 * Messages and DMARC passes per domain and service: from `windowFrom` to `to` and, as the
 * baseline, from `baselineFrom` to the day before `windowFrom`.
 */
export async function findServicePassRates(
  pool: Queryable,
  baselineFrom: string,
  windowFrom: string,
  to: string,
): Promise<ServicePassRate[]> {
  const { rows } = await pool.query(SERVICE_PASS_RATES, [baselineFrom, windowFrom, to]);
  return rows.map((row) => ({
    domain: row.domain,
    service: row.service,
    messages: row.messages,
    passMessages: row.pass_messages,
    baselineMessages: row.baseline_messages,
    baselinePass: row.baseline_pass,
  }));
}

const UNATTRIBUTED_FAILING_BY_DAY = `
  SELECT st.domain, st.day::text AS day,
         sum(st.messages - st.pass_messages)::bigint AS failing
    FROM daily_sender_stats st
    JOIN senders s USING (sender_key)
   WHERE st.day BETWEEN $1 AND $2 AND NOT st.is_foreign AND ${UNATTRIBUTED}
   GROUP BY st.domain, st.day`;

/** Failing messages from unattributed sources per domain and report day. */
export async function findUnattributedFailingByDay(
  pool: Queryable,
  from: string,
  to: string,
): Promise<{ domain: string; day: string; failing: number }[]> {
  const { rows } = await pool.query(UNATTRIBUTED_FAILING_BY_DAY, [from, to]);
  return rows;
}

const DOMAIN_REPORT_DAYS = `
  SELECT domain, count(DISTINCT day)::int AS days
    FROM daily_domain_stats
   WHERE NOT is_foreign AND day BETWEEN $1 AND $2
   GROUP BY domain`;

/** Counts the report days with any report, per domain, between two days. */
export async function findDomainReportDays(
  pool: Queryable,
  from: string,
  to: string,
): Promise<Map<string, number>> {
  const { rows } = await pool.query(DOMAIN_REPORT_DAYS, [from, to]);
  return new Map(rows.map((row) => [row.domain, row.days]));
}

const REPORTER_DAYS = `
  SELECT reporter_org,
         count(DISTINCT day) FILTER (WHERE day BETWEEN $1 AND $2)::int AS baseline_days,
         max(day)::text AS last_day,
         array_agg(DISTINCT domain ORDER BY domain) AS domains
    FROM daily_domain_stats
   WHERE NOT is_foreign AND day BETWEEN $1 AND $3
   GROUP BY reporter_org
   ORDER BY reporter_org`;

/** A reporter's report days in the baseline and the last day it reported on. */
export interface ReporterDays {
  reporterOrg: string;
  baselineDays: number;
  lastDay: string;
  domains: string[];
}

/** Reporters with any report from `baselineFrom` to `to`, with their baseline report days. */
export async function findReporterDays(
  pool: Queryable,
  baselineFrom: string,
  baselineTo: string,
  to: string,
): Promise<ReporterDays[]> {
  const { rows } = await pool.query(REPORTER_DAYS, [baselineFrom, baselineTo, to]);
  return rows.map((row) => ({
    reporterOrg: row.reporter_org,
    baselineDays: row.baseline_days,
    lastDay: row.last_day,
    domains: row.domains,
  }));
}

/** When the latest raw input arrived; null when nothing was ever received. */
export async function findLastInputReceived(pool: Queryable): Promise<Date | null> {
  const { rows } = await pool.query('SELECT max(received_at) AS last FROM raw_inputs');
  return rows[0].last;
}

const OPEN_INPUTS = `
  SELECT id, name, source, status, error_code, error_message, received_at
    FROM raw_inputs
   WHERE status IN ('quarantined', 'partial')
   ORDER BY id`;

/** A quarantined or partly read input. */
export interface ProblemInput {
  id: number;
  name: string;
  source: string;
  status: 'quarantined' | 'partial';
  errorCode: string | null;
  errorMessage: string | null;
  receivedAt: Date;
}

/** Inputs still quarantined or partly read, oldest first. */
export async function findProblemInputs(pool: Queryable): Promise<ProblemInput[]> {
  const { rows } = await pool.query(OPEN_INPUTS);
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    source: row.source,
    status: row.status,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    receivedAt: row.received_at,
  }));
}

// Mailbox connection state ----------------------------------------------------------------

const SAVE_MAILBOX_SUCCESS = `
  INSERT INTO mailbox_status (mailbox, last_connected_at, failing_since, failures, updated_at)
  VALUES ($1, $2, NULL, 0, $2)
  ON CONFLICT (mailbox) DO UPDATE SET
    last_connected_at = EXCLUDED.last_connected_at, failing_since = NULL, failures = 0,
    last_error = NULL, updated_at = EXCLUDED.updated_at`;

const SAVE_MAILBOX_FAILURE = `
  INSERT INTO mailbox_status (mailbox, failing_since, failures, last_error, updated_at)
  VALUES ($1, $2, 1, $3, $2)
  ON CONFLICT (mailbox) DO UPDATE SET
    failing_since = coalesce(mailbox_status.failing_since, EXCLUDED.failing_since),
    failures = mailbox_status.failures + 1,
    last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at`;

/**
 * Saves the outcome of one IMAP connection attempt; `mailbox` names the account and folder,
 * e.g. `dmarc@imap.example.com/INBOX`. Called by the poller after each attempt.
 */
export async function saveMailboxConnection(
  pool: Queryable,
  mailbox: string,
  outcome: { connected: true } | { connected: false; error: string },
  at: Date,
): Promise<void> {
  if (outcome.connected) await pool.query(SAVE_MAILBOX_SUCCESS, [mailbox, at]);
  else await pool.query(SAVE_MAILBOX_FAILURE, [mailbox, at, outcome.error.slice(0, 2000)]);
}

/** The connection state of one mailbox. */
export interface MailboxStatus {
  mailbox: string;
  lastConnectedAt: Date | null;
  failingSince: Date | null;
  failures: number;
  lastError: string | null;
}

export async function findMailboxStatuses(pool: Queryable): Promise<MailboxStatus[]> {
  const { rows } = await pool.query(
    `SELECT mailbox, last_connected_at, failing_since, failures, last_error
       FROM mailbox_status ORDER BY mailbox`,
  );
  return rows.map((row) => ({
    mailbox: row.mailbox,
    lastConnectedAt: row.last_connected_at,
    failingSince: row.failing_since,
    failures: row.failures,
    lastError: row.last_error,
  }));
}

// Alerts ----------------------------------------------------------------------------------

/** An alert as stored. */
export interface StoredAlert {
  id: number;
  key: string;
  rule: string;
  domain: string | null;
  service: string | null;
  severity: string;
  state: 'open' | 'resolved';
  title: string;
  details: Record<string, unknown>;
  level: number;
  members: string[];
  notifiedLevel: number | null;
  notifiedMembers: string[];
  openedAt: Date;
  lastSeenAt: Date;
  lastNotifiedAt: Date | null;
  resolvedAt: Date | null;
  resolution: string | null;
}

const ALERT_COLUMNS = `id, alert_key, rule, domain, service, severity, state, title, details,
  level, members, notified_level, notified_members, opened_at, last_seen_at, last_notified_at,
  resolved_at, resolution`;

function toAlert(row: Record<string, any>): StoredAlert {
  return {
    id: row.id,
    key: row.alert_key,
    rule: row.rule,
    domain: row.domain,
    service: row.service,
    severity: row.severity,
    state: row.state,
    title: row.title,
    details: row.details,
    level: row.level,
    members: row.members,
    notifiedLevel: row.notified_level,
    notifiedMembers: row.notified_members,
    openedAt: row.opened_at,
    lastSeenAt: row.last_seen_at,
    lastNotifiedAt: row.last_notified_at,
    resolvedAt: row.resolved_at,
    resolution: row.resolution,
  };
}

/** Finds every open alert. */
export async function findOpenAlerts(pool: Queryable): Promise<StoredAlert[]> {
  const { rows } = await pool.query(
    `SELECT ${ALERT_COLUMNS} FROM alerts WHERE state = 'open' ORDER BY id`,
  );
  return rows.map(toAlert);
}

/** The values of an alert that each evaluation refreshes. */
export interface AlertValues {
  key: string;
  rule: string;
  domain: string | null;
  service: string | null;
  severity: string;
  title: string;
  details: Record<string, unknown>;
  level: number;
  members: string[];
}

const INSERT_ALERT = `
  INSERT INTO alerts (alert_key, rule, domain, service, severity, state, title, details, level,
                      members, opened_at, last_seen_at)
  VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9, $10, $10)
  RETURNING id`;

/** Opens an alert; returns its id. */
export async function insertAlert(pool: Queryable, alert: AlertValues, at: Date): Promise<number> {
  const { rows } = await pool.query(INSERT_ALERT, [
    alert.key,
    alert.rule,
    alert.domain,
    alert.service,
    alert.severity,
    alert.title,
    JSON.stringify(alert.details),
    alert.level,
    alert.members,
    at,
  ]);
  return rows[0].id;
}

const UPDATE_ALERT = `
  UPDATE alerts SET severity = $2, title = $3, details = $4, level = $5, members = $6,
                    last_seen_at = $7
   WHERE id = $1`;

/** Refreshes an open alert with the latest finding. */
export async function updateAlert(
  pool: Queryable,
  id: number,
  alert: AlertValues,
  at: Date,
): Promise<void> {
  await pool.query(UPDATE_ALERT, [
    id,
    alert.severity,
    alert.title,
    JSON.stringify(alert.details),
    alert.level,
    alert.members,
    at,
  ]);
}

// The members sent so far accumulate, so that a source that comes and goes is sent once.
const MARK_ALERT_NOTIFIED = `
  UPDATE alerts SET notified_level = level,
                    notified_members = ARRAY(SELECT DISTINCT unnest(notified_members || members)),
                    last_notified_at = $2
   WHERE id = $1`;

/** Records that the alert's present level and members were sent. */
export async function markAlertNotified(pool: Queryable, id: number, at: Date): Promise<void> {
  await pool.query(MARK_ALERT_NOTIFIED, [id, at]);
}

/** Resolves an open alert. */
export async function resolveAlert(
  pool: Queryable,
  id: number,
  at: Date,
  resolution: 'cleared' | 'rule-disabled',
): Promise<void> {
  await pool.query(
    `UPDATE alerts SET state = 'resolved', resolved_at = $2, resolution = $3 WHERE id = $1`,
    [id, at, resolution],
  );
}

const LIST_ALERTS = `
  SELECT ${ALERT_COLUMNS},
         (SELECT coalesce(json_agg(json_build_object(
                   'id', d.id, 'kind', d.kind, 'recipient', d.recipient, 'subject', d.subject,
                   'status', d.status, 'attempts', d.attempts, 'last_error', d.last_error,
                   'created_at', d.created_at, 'sent_at', d.sent_at,
                   'next_attempt_at', CASE WHEN d.status = 'pending' THEN d.next_attempt_at END)
                   ORDER BY d.id), '[]')
            FROM alert_deliveries d WHERE d.alert_id = alerts.id) AS deliveries,
         count(*) OVER ()::int AS total
    FROM alerts
   WHERE ($1::text IS NULL OR state = $1)
     AND ($2::text IS NULL OR rule = $2)
     AND ($3::text IS NULL OR domain = $3)
   ORDER BY (state = 'open') DESC, coalesce(resolved_at, last_seen_at) DESC, id DESC
   LIMIT $4 OFFSET $5`;

/** A delivery of an alert, as the history lists it. */
export interface DeliverySummary {
  id: number;
  kind: string;
  recipient: string;
  subject: string;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  last_error: string | null;
  created_at: string;
  sent_at: string | null;
  next_attempt_at: string | null;
}

export interface AlertHistoryFilter {
  state: 'open' | 'resolved' | null;
  rule: string | null;
  domain: string | null;
  limit: number;
  offset: number;
}

/** Alerts with their deliveries, open ones first, then the latest. */
export async function listAlerts(
  pool: Queryable,
  filter: AlertHistoryFilter,
): Promise<{ total: number; alerts: (StoredAlert & { deliveries: DeliverySummary[] })[] }> {
  const { rows } = await pool.query(LIST_ALERTS, [
    filter.state,
    filter.rule,
    filter.domain,
    filter.limit,
    filter.offset,
  ]);
  return {
    total: rows[0]?.total ?? 0,
    alerts: rows.map((row) => ({ ...toAlert(row), deliveries: row.deliveries })),
  };
}

// Deliveries ------------------------------------------------------------------------------

/** A message to one recipient. */
export interface NewDelivery {
  alertId: number | null;
  kind: 'opened' | 'worse' | 'reminder' | 'resolved' | 'digest' | 'test';
  recipient: string;
  subject: string;
  text: string;
  html: string;
}

const INSERT_DELIVERY = `
  INSERT INTO alert_deliveries (alert_id, kind, recipient, subject, text_body, html_body,
                                next_attempt_at, created_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
  RETURNING id`;

/** Queues a message, due at once; returns its id. */
export async function insertDelivery(
  pool: Queryable,
  delivery: NewDelivery,
  at: Date,
): Promise<number> {
  const { rows } = await pool.query(INSERT_DELIVERY, [
    delivery.alertId,
    delivery.kind,
    delivery.recipient,
    delivery.subject,
    delivery.text,
    delivery.html,
    at,
  ]);
  return rows[0].id;
}

/** A queued message claimed for one attempt. */
export interface ClaimedDelivery {
  id: number;
  alertId: number | null;
  kind: string;
  recipient: string;
  subject: string;
  text: string;
  html: string;
  /** Attempts so far, including this one. */
  attempts: number;
}

// The claim moves next_attempt_at past the lease, so that a crash during the attempt leaves the
// message to be tried again after the lease instead of lost, and so that another instance skips
// it meanwhile.
const CLAIM_DUE_DELIVERIES = `
  UPDATE alert_deliveries d
     SET attempts = d.attempts + 1, next_attempt_at = $2
    FROM (SELECT id FROM alert_deliveries
           WHERE status = 'pending' AND next_attempt_at <= $1
             AND ($4::bigint[] IS NULL OR id = ANY($4))
           ORDER BY next_attempt_at, id
           LIMIT $3
           FOR UPDATE SKIP LOCKED) due
   WHERE d.id = due.id
  RETURNING d.id, d.alert_id, d.kind, d.recipient, d.subject, d.text_body, d.html_body,
            d.attempts`;

/** Claims messages due at `now` (optionally only `onlyIds`) for one attempt each, until `leaseUntil`. */
export async function claimDueDeliveries(
  pool: Queryable,
  now: Date,
  leaseUntil: Date,
  limit: number,
  onlyIds: number[] | null = null,
): Promise<ClaimedDelivery[]> {
  const { rows } = await pool.query(CLAIM_DUE_DELIVERIES, [now, leaseUntil, limit, onlyIds]);
  return rows
    .map((row) => ({
      id: row.id,
      alertId: row.alert_id,
      kind: row.kind,
      recipient: row.recipient,
      subject: row.subject,
      text: row.text_body,
      html: row.html_body,
      attempts: row.attempts,
    }))
    .sort((a, b) => a.id - b.id);
}

export async function markDeliverySent(
  pool: Queryable,
  id: number,
  at: Date,
  messageId: string | null,
): Promise<void> {
  await pool.query(
    `UPDATE alert_deliveries SET status = 'sent', sent_at = $2, message_id = $3, last_error = NULL
      WHERE id = $1`,
    [id, at, messageId],
  );
}

/** Records a failed attempt: due again at `retryAt`, or failed for good when that is null. */
export async function markDeliveryAttemptFailed(
  pool: Queryable,
  id: number,
  error: string,
  retryAt: Date | null,
): Promise<void> {
  await pool.query(
    `UPDATE alert_deliveries
        SET last_error = $2,
            status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
            next_attempt_at = coalesce($3, next_attempt_at)
      WHERE id = $1`,
    [id, error.slice(0, 2000), retryAt],
  );
}

/** A delivery with its state, for the CLI and the tests. */
export interface DeliveryState {
  id: number;
  alertId: number | null;
  kind: string;
  recipient: string;
  subject: string;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  lastError: string | null;
  nextAttemptAt: Date;
  sentAt: Date | null;
}

/** Deliveries by id, in id order. */
export async function findDeliveries(pool: Queryable, ids: number[]): Promise<DeliveryState[]> {
  const { rows } = await pool.query(
    `SELECT id, alert_id, kind, recipient, subject, status, attempts, last_error,
            next_attempt_at, sent_at
       FROM alert_deliveries WHERE id = ANY($1) ORDER BY id`,
    [ids],
  );
  return rows.map((row) => ({
    id: row.id,
    alertId: row.alert_id,
    kind: row.kind,
    recipient: row.recipient,
    subject: row.subject,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    nextAttemptAt: row.next_attempt_at,
    sentAt: row.sent_at,
  }));
}

/** Counts of deliveries per status. */
export async function countDeliveries(
  pool: Queryable,
): Promise<Record<'pending' | 'sent' | 'failed', number>> {
  const { rows } = await pool.query(
    'SELECT status, count(*)::int AS n FROM alert_deliveries GROUP BY status',
  );
  const counts = { pending: 0, sent: 0, failed: 0 };
  for (const row of rows) counts[row.status as keyof typeof counts] = row.n;
  return counts;
}

// Digests ---------------------------------------------------------------------------------

/**
 * Claims the digest of one recipient and period. Returns false when it was already claimed,
 * by this or another instance.
 */
export async function claimDigest(
  pool: Queryable,
  recipient: string,
  frequency: 'daily' | 'weekly',
  periodStart: string,
  at: Date,
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `INSERT INTO alert_digests (recipient, frequency, period_start, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
    [recipient, frequency, periodStart, at],
  );
  return rowCount === 1;
}

export async function linkDigestDelivery(
  pool: Queryable,
  recipient: string,
  frequency: 'daily' | 'weekly',
  periodStart: string,
  deliveryId: number,
): Promise<void> {
  await pool.query(
    `UPDATE alert_digests SET delivery_id = $4
      WHERE recipient = $1 AND frequency = $2 AND period_start = $3`,
    [recipient, frequency, periodStart, deliveryId],
  );
}

/** True when the digest of this recipient and period was already queued. */
export async function isDigestClaimed(
  pool: Queryable,
  recipient: string,
  frequency: 'daily' | 'weekly',
  periodStart: string,
): Promise<boolean> {
  const { rows } = await pool.query(
    `SELECT 1 FROM alert_digests WHERE recipient = $1 AND frequency = $2 AND period_start = $3`,
    [recipient, frequency, periodStart],
  );
  return rows.length > 0;
}

const DAILY_TOTALS = `
  SELECT day::text AS day, sum(messages)::bigint AS messages,
         sum(pass_messages)::bigint AS pass_messages
    FROM daily_domain_stats
   WHERE NOT is_foreign AND day BETWEEN $1 AND $2
   GROUP BY day ORDER BY day`;

/** Messages and DMARC passes per report day, over every owned domain. */
export async function findDailyTotals(
  pool: Queryable,
  from: string,
  to: string,
): Promise<{ day: string; messages: number; passMessages: number }[]> {
  const { rows } = await pool.query(DAILY_TOTALS, [from, to]);
  return rows.map((row) => ({
    day: row.day,
    messages: row.messages,
    passMessages: row.pass_messages,
  }));
}

const DOMAIN_TOTALS = `
  SELECT domain, sum(messages)::bigint AS messages, sum(pass_messages)::bigint AS pass_messages
    FROM daily_domain_stats
   WHERE NOT is_foreign AND day BETWEEN $1 AND $2
   GROUP BY domain ORDER BY sum(messages) DESC, domain`;

/** Messages and DMARC passes per owned domain between two report days. */
export async function findDomainTotals(
  pool: Queryable,
  from: string,
  to: string,
): Promise<{ domain: string; messages: number; passMessages: number }[]> {
  const { rows } = await pool.query(DOMAIN_TOTALS, [from, to]);
  return rows.map((row) => ({
    domain: row.domain,
    messages: row.messages,
    passMessages: row.pass_messages,
  }));
}

const TOP_FAILING_SERVICES = `
  SELECT st.domain, s.service, sum(st.messages)::bigint AS messages,
         sum(st.pass_messages)::bigint AS pass_messages
    FROM daily_sender_stats st
    JOIN senders s USING (sender_key)
   WHERE st.day BETWEEN $1 AND $2 AND NOT st.is_foreign AND s.service IS NOT NULL
   GROUP BY st.domain, s.service
  HAVING sum(st.messages - st.pass_messages) > 0
   ORDER BY sum(st.messages - st.pass_messages) DESC, st.domain, s.service
   LIMIT $3`;

/** Catalog services with the most failing messages between two report days. */
export async function findTopFailingServices(
  pool: Queryable,
  from: string,
  to: string,
  limit: number,
): Promise<{ domain: string; service: string; messages: number; passMessages: number }[]> {
  const { rows } = await pool.query(TOP_FAILING_SERVICES, [from, to, limit]);
  return rows.map((row) => ({
    domain: row.domain,
    service: row.service,
    messages: row.messages,
    passMessages: row.pass_messages,
  }));
}

const TOP_FAILING_SOURCES = `
  SELECT st.domain, host(s.source_ip) AS source_ip, s.service,
         sum(st.messages)::bigint AS messages, sum(st.pass_messages)::bigint AS pass_messages
    FROM daily_sender_stats st
    JOIN senders s USING (sender_key)
   WHERE st.day BETWEEN $1 AND $2 AND NOT st.is_foreign
   GROUP BY st.domain, s.source_ip, s.service
  HAVING sum(st.messages - st.pass_messages) > 0
   ORDER BY sum(st.messages - st.pass_messages) DESC, st.domain, host(s.source_ip)
   LIMIT $3`;

/** A source address and its mail about one domain, with its service when attributed. */
export interface SourceTotals {
  domain: string;
  sourceIp: string | null;
  service: string | null;
  messages: number;
  passMessages: number;
  firstSeen?: Date;
}

/** Source addresses with the most failing messages between two report days. */
export async function findTopFailingSources(
  pool: Queryable,
  from: string,
  to: string,
  limit: number,
): Promise<SourceTotals[]> {
  const { rows } = await pool.query(TOP_FAILING_SOURCES, [from, to, limit]);
  return rows.map((row) => ({
    domain: row.domain,
    sourceIp: row.source_ip,
    service: row.service,
    messages: row.messages,
    passMessages: row.pass_messages,
  }));
}

const NEW_SOURCES = `
  WITH ${FIRST_SEEN_BY_IP}
  SELECT st.domain, host(s.source_ip) AS source_ip, s.service, min(f.first_seen) AS first_seen,
         sum(st.messages)::bigint AS messages, sum(st.pass_messages)::bigint AS pass_messages
    FROM daily_sender_stats st
    JOIN senders s USING (sender_key)
    JOIN first_seen f ON f.source_ip = s.source_ip
   WHERE st.day BETWEEN $1 AND $2 AND NOT st.is_foreign
     AND f.first_seen >= $1::date::timestamp AT TIME ZONE 'UTC'
   GROUP BY st.domain, s.source_ip, s.service
   ORDER BY sum(st.messages) DESC, st.domain, host(s.source_ip)
   LIMIT $3`;

/** Source addresses first seen between two report days, busiest first. */
export async function findNewSources(
  pool: Queryable,
  from: string,
  to: string,
  limit: number,
): Promise<SourceTotals[]> {
  const { rows } = await pool.query(NEW_SOURCES, [from, to, limit]);
  return rows.map((row) => ({
    domain: row.domain,
    sourceIp: row.source_ip,
    service: row.service,
    messages: row.messages,
    passMessages: row.pass_messages,
    firstSeen: row.first_seen,
  }));
}

// Rule settings ---------------------------------------------------------------------------

/** A rule as the dashboard shows it. */
export interface StoredRule {
  rule: string;
  enabled: boolean;
  settings: Record<string, unknown>;
  overrides: Record<string, unknown>;
  updatedAt: Date;
  updatedBy: string | null;
}

/** Finds the stored rules with their dashboard edits, by rule name. */
export async function findRules(pool: Queryable): Promise<StoredRule[]> {
  const { rows } = await pool.query(
    `SELECT rule, enabled, settings, overrides, updated_at, updated_by FROM alert_rules
      ORDER BY rule`,
  );
  return rows.map((row) => ({
    rule: row.rule,
    enabled: row.enabled,
    settings: row.settings,
    overrides: row.overrides,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  }));
}

// A rule's settings change only when the file or the code defaults did; the row is left alone
// otherwise, so that updated_at records when they last changed.
const SAVE_RULE_SETTINGS = `
  INSERT INTO alert_rules (rule, enabled, settings, updated_at)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT (rule) DO UPDATE SET enabled = EXCLUDED.enabled, settings = EXCLUDED.settings,
                                   updated_at = EXCLUDED.updated_at
   WHERE alert_rules.settings IS DISTINCT FROM EXCLUDED.settings
      OR alert_rules.enabled IS DISTINCT FROM EXCLUDED.enabled`;

/** Saves the effective settings of a rule, as the dashboard lists them. */
export async function saveRuleSettings(
  pool: Queryable,
  rule: string,
  enabled: boolean,
  settings: Record<string, unknown>,
  at: Date,
): Promise<void> {
  await pool.query(SAVE_RULE_SETTINGS, [rule, enabled, JSON.stringify(settings), at]);
}

const SAVE_RULE_OVERRIDES = `
  INSERT INTO alert_rules (rule, enabled, settings, overrides, updated_at, updated_by)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (rule) DO UPDATE SET enabled = EXCLUDED.enabled, settings = EXCLUDED.settings,
                                   overrides = EXCLUDED.overrides,
                                   updated_at = EXCLUDED.updated_at,
                                   updated_by = EXCLUDED.updated_by`;

/** Saves the dashboard edits of a rule together with the settings they result in. */
export async function saveRuleOverrides(
  pool: Queryable,
  rule: string,
  enabled: boolean,
  settings: Record<string, unknown>,
  overrides: Record<string, unknown>,
  by: string,
  at: Date,
): Promise<void> {
  await pool.query(SAVE_RULE_OVERRIDES, [
    rule,
    enabled,
    JSON.stringify(settings),
    JSON.stringify(overrides),
    at,
    by,
  ]);
}

/** Finds the dashboard edits of every rule that has any. */
export async function findRuleOverrides(pool: Queryable): Promise<Map<string, unknown>> {
  const { rows } = await pool.query(
    `SELECT rule, overrides FROM alert_rules WHERE overrides <> '{}'::jsonb`,
  );
  return new Map(rows.map((row) => [row.rule, row.overrides]));
}

// Evaluation lock -------------------------------------------------------------------------

// Any constant works; it only has to be the same in every dmarc-lens process.
const EVALUATION_LOCK_KEY = 7_489_005;

/**
 * Runs `work` in one transaction while holding the alert evaluation lock, so that two
 * instances never decide on the same alerts at once. Returns null, without running `work`,
 * when another instance holds the lock.
 */
export async function withEvaluationLock<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<{ result: T } | null> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query('SELECT pg_try_advisory_xact_lock($1) AS locked', [
      EVALUATION_LOCK_KEY,
    ]);
    if (!rows[0].locked) {
      await client.query('ROLLBACK');
      return null;
    }
    const result = await work(client);
    await client.query('COMMIT');
    return { result };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

const LIST_DELIVERIES = `
  SELECT d.id, d.alert_id, d.kind, d.recipient, d.subject, d.status, d.attempts, d.last_error,
         d.created_at, d.sent_at,
         CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
         a.alert_key, count(*) OVER ()::int AS total
    FROM alert_deliveries d
    LEFT JOIN alerts a ON a.id = d.alert_id
   WHERE ($1::text IS NULL OR d.status = $1)
   ORDER BY d.id DESC
   LIMIT $2 OFFSET $3`;

/** Deliveries of alerts, digests and test messages, latest first. */
export async function listDeliveries(
  pool: Queryable,
  filter: { status: 'pending' | 'sent' | 'failed' | null; limit: number; offset: number },
): Promise<{ total: number; rows: Record<string, unknown>[] }> {
  const { rows } = await pool.query(LIST_DELIVERIES, [filter.status, filter.limit, filter.offset]);
  return {
    total: rows[0]?.total ?? 0,
    rows: rows.map(({ total: _total, ...row }) => row),
  };
}

/** Makes a failed delivery due again with a fresh set of attempts; false when not failed. */
export async function retryDelivery(pool: Queryable, id: number, at: Date): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE alert_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2
      WHERE id = $1 AND status = 'failed'`,
    [id, at],
  );
  return rowCount === 1;
}
