import type pg from 'pg';
import type { Logger } from 'pino';

import { dropPartitionsBefore } from './partitions.js';

// True when a domain is outside the owned list ($1); an empty list owns everything.
const FOREIGN_CONDITION = `
  NOT (cardinality($1::text[]) = 0
       OR domain = ANY($1::text[])
       OR EXISTS (SELECT 1 FROM unnest($1::text[]) AS owned WHERE domain LIKE '%.' || owned))`;

/**
 * Recomputes which reports are foreign when DOMAINS changed since it was last applied, so that
 * reports stored under the old setting follow the new one. An unset DOMAINS changes nothing:
 * a command run from a shell without it must not turn every foreign report into the team's.
 * Returns true when it changed the stored flags.
 */
export async function applyOwnedDomains(
  pool: pg.Pool,
  ownedDomains: readonly string[],
  log: Logger,
): Promise<boolean> {
  if (ownedDomains.length === 0) return false;
  const wanted = [...ownedDomains].sort();
  const { rows } = await pool.query<{ value: string[] }>(
    `SELECT value FROM settings WHERE key = 'owned_domains'`,
  );
  if (rows.length > 0 && JSON.stringify(rows[0].value) === JSON.stringify(wanted)) return false;

  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const table of ['reports', 'records', 'daily_sender_stats', 'daily_domain_stats']) {
      await client.query(
        `UPDATE ${table} SET is_foreign = ${FOREIGN_CONDITION}
          WHERE is_foreign IS DISTINCT FROM (${FOREIGN_CONDITION})`,
        [wanted],
      );
    }
    await client.query(
      `INSERT INTO settings (key, value) VALUES ('owned_domains', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [JSON.stringify(wanted)],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  if (rows.length > 0) log.info({ domains: wanted }, 'DOMAINS changed; foreign reports recomputed');
  return true;
}

/**
 * Drops records older than the retention period, whole monthly partitions at a time, the
 * reports they belonged to, and the raw inputs left without reports: those whose reports were
 * dropped here, and old ones that only repeated reports stored elsewhere. Quarantined and
 * partly read inputs stay until someone deals with them. The daily totals are kept, so the
 * dashboard's history outlives the records. Returns the dropped partitions.
 */
export async function applyRetention(
  pool: pg.Pool,
  retentionMonths: number,
  log: Logger,
  now = new Date(),
): Promise<string[]> {
  if (retentionMonths <= 0) return [];
  const cutoff = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - retentionMonths, 1));

  const dropped = await dropPartitionsBefore(pool, cutoff);
  await pool.query('DELETE FROM records_other WHERE date_begin < $1', [cutoff]);
  const reports = await pool.query('DELETE FROM reports WHERE date_begin < $1', [cutoff]);
  const inputs = await pool.query(
    `DELETE FROM raw_inputs
      WHERE status = 'done'
        AND (received_at < $1 OR reports_stored + reports_foreign > 0)
        AND NOT EXISTS (SELECT 1 FROM reports WHERE reports.raw_input_id = raw_inputs.id)`,
    [cutoff],
  );
  if (dropped.length > 0 || (reports.rowCount ?? 0) > 0) {
    log.info(
      { cutoff, partitions: dropped, reports: reports.rowCount, rawInputs: inputs.rowCount },
      'Applied retention',
    );
  }
  return dropped;
}
