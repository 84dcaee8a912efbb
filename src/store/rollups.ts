import type pg from 'pg';
import type { Logger } from 'pino';

// The reports rolled up per transaction: enough to amortise the statements, few enough that
// a transaction stays short.
const BATCH_REPORTS = 50;

// Override reasons of RFC 7489 §6.6.3 that mean "delivered because it was forwarded".
const FORWARDED = `NOT dmarc_pass AND reasons @? '$[*] ? (@.type == "forwarded" || @.type == "trusted_forwarder" || @.type == "mailing_list" || @.type == "local_policy")'`;

const CLAIM_REPORTS = `
  SELECT id FROM reports
   WHERE rolled_up_at IS NULL
   ORDER BY id
   LIMIT $1
   FOR UPDATE SKIP LOCKED`;

// ORDER BY takes row locks in one order, so that two workers wait instead of deadlocking.
const INSERT_SENDERS = `
  INSERT INTO senders (sender_key, source_ip, header_from, envelope_from, dkim, spf, first_seen)
  SELECT DISTINCT ON (sender_key)
         sender_key, source_ip, header_from, envelope_from, dkim, spf, date_begin
    FROM records
   WHERE report_ref = ANY($1)
   ORDER BY sender_key, date_begin
  ON CONFLICT (sender_key) DO UPDATE SET first_seen = LEAST(senders.first_seen, EXCLUDED.first_seen)
   WHERE EXCLUDED.first_seen < senders.first_seen`;

const UPSERT_SENDER_STATS = `
  INSERT INTO daily_sender_stats AS stats (
    day, domain, reporter_org, sender_key, is_foreign, records, messages, pass_messages,
    dkim_pass_messages, spf_pass_messages, quarantined_messages, rejected_messages,
    forwarded_messages
  )
  SELECT (date_begin AT TIME ZONE 'UTC')::date, domain, reporter_org, sender_key, is_foreign,
         count(*), sum(count),
         coalesce(sum(count) FILTER (WHERE dmarc_pass), 0),
         coalesce(sum(count) FILTER (WHERE eval_dkim = 'pass'), 0),
         coalesce(sum(count) FILTER (WHERE eval_spf = 'pass'), 0),
         coalesce(sum(count) FILTER (WHERE disposition = 'quarantine'), 0),
         coalesce(sum(count) FILTER (WHERE disposition = 'reject'), 0),
         coalesce(sum(count) FILTER (WHERE ${FORWARDED}), 0)
    FROM records
   WHERE report_ref = ANY($1)
   GROUP BY 1, 2, 3, 4, 5
   ORDER BY 1, 2, 3, 4
  ON CONFLICT (day, domain, reporter_org, sender_key) DO UPDATE SET
    records = stats.records + EXCLUDED.records,
    messages = stats.messages + EXCLUDED.messages,
    pass_messages = stats.pass_messages + EXCLUDED.pass_messages,
    dkim_pass_messages = stats.dkim_pass_messages + EXCLUDED.dkim_pass_messages,
    spf_pass_messages = stats.spf_pass_messages + EXCLUDED.spf_pass_messages,
    quarantined_messages = stats.quarantined_messages + EXCLUDED.quarantined_messages,
    rejected_messages = stats.rejected_messages + EXCLUDED.rejected_messages,
    forwarded_messages = stats.forwarded_messages + EXCLUDED.forwarded_messages`;

const UPSERT_DOMAIN_STATS = `
  INSERT INTO daily_domain_stats AS stats (
    day, domain, reporter_org, is_foreign, reports, records, messages, pass_messages,
    dkim_pass_messages, spf_pass_messages, quarantined_messages, rejected_messages,
    forwarded_messages
  )
  SELECT (date_begin AT TIME ZONE 'UTC')::date, domain, reporter_org, is_foreign,
         count(DISTINCT report_ref), count(*), sum(count),
         coalesce(sum(count) FILTER (WHERE dmarc_pass), 0),
         coalesce(sum(count) FILTER (WHERE eval_dkim = 'pass'), 0),
         coalesce(sum(count) FILTER (WHERE eval_spf = 'pass'), 0),
         coalesce(sum(count) FILTER (WHERE disposition = 'quarantine'), 0),
         coalesce(sum(count) FILTER (WHERE disposition = 'reject'), 0),
         coalesce(sum(count) FILTER (WHERE ${FORWARDED}), 0)
    FROM records
   WHERE report_ref = ANY($1)
   GROUP BY 1, 2, 3, 4
   ORDER BY 1, 2, 3
  ON CONFLICT (day, domain, reporter_org) DO UPDATE SET
    reports = stats.reports + EXCLUDED.reports,
    records = stats.records + EXCLUDED.records,
    messages = stats.messages + EXCLUDED.messages,
    pass_messages = stats.pass_messages + EXCLUDED.pass_messages,
    dkim_pass_messages = stats.dkim_pass_messages + EXCLUDED.dkim_pass_messages,
    spf_pass_messages = stats.spf_pass_messages + EXCLUDED.spf_pass_messages,
    quarantined_messages = stats.quarantined_messages + EXCLUDED.quarantined_messages,
    rejected_messages = stats.rejected_messages + EXCLUDED.rejected_messages,
    forwarded_messages = stats.forwarded_messages + EXCLUDED.forwarded_messages`;

const MARK_ROLLED_UP = 'UPDATE reports SET rolled_up_at = now() WHERE id = ANY($1)';

/**
 * Adds one batch of newly stored reports to senders and the daily tables. Returns how many
 * reports it rolled up; 0 means nothing was waiting. Several processes may call it at once:
 * each batch is claimed with SKIP LOCKED, so no report is counted twice.
 */
export async function rollUpReports(pool: pg.Pool, batchSize = BATCH_REPORTS): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: number }>(CLAIM_REPORTS, [batchSize]);
    if (rows.length === 0) {
      await client.query('ROLLBACK');
      return 0;
    }
    const ids = rows.map((row) => row.id);
    // Sorting a large report's records in memory instead of on disk.
    await client.query(`SET LOCAL work_mem = '64MB'`);
    await client.query(INSERT_SENDERS, [ids]);
    await client.query(UPSERT_SENDER_STATS, [ids]);
    await client.query(UPSERT_DOMAIN_STATS, [ids]);
    await client.query(MARK_ROLLED_UP, [ids]);
    await client.query('COMMIT');
    return ids.length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Rolls up every waiting report; returns the count. */
export async function rollUpAllReports(pool: pg.Pool, log?: Logger): Promise<number> {
  let total = 0;
  for (;;) {
    const count = await rollUpReports(pool);
    if (count === 0) break;
    total += count;
  }
  if (total > 0) log?.debug({ reports: total }, 'Rolled up reports into daily totals');
  return total;
}
