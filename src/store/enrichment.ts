/**
 * Reverse DNS of sender addresses, cached in source_hosts. The worker claims addresses that
 * were never looked up or whose entry expired, looks them up outside any transaction, and
 * stores the results. It shares no lock with ingest, so a slow or failing DNS server delays
 * only the names, never a report. A changed confirmed name makes the address's senders due
 * for attribution again, since `ptr` rules and provider recognition read it.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

import {
  DEFAULT_CACHE_TTL_SECONDS,
  ReverseDnsLookup,
  type ReverseDnsResult,
  type ReverseDnsState,
} from '../analyze/enrichment.js';
import { RepeatingJob } from './attribution.js';

/** Options of `enrichSourceHosts`. */
export interface EnrichmentOptions {
  /** Addresses claimed per batch. Default 200. */
  batchSize?: number;
  /**
   * Seconds a claim lasts. A process that dies mid-batch leaves its addresses to others after
   * this. Default 120, well above a batch at the default timeout and concurrency.
   */
  leaseSeconds?: number;
  /** Cache lifetime per state, in seconds. Default `DEFAULT_CACHE_TTL_SECONDS`. */
  ttlSeconds?: Partial<Record<ReverseDnsState, number>>;
}

/** Counts of one enrichment batch. */
export interface EnrichmentBatch {
  lookedUp: number;
  /** Addresses whose confirmed name changed. Their senders are attributed again. */
  changed: number;
}

// Addresses never looked up get a 'pending' row, which is the claim.
const CLAIM_NEW = `
  INSERT INTO source_hosts (ip, state, expires_at)
  SELECT DISTINCT s.source_ip, 'pending', now() + make_interval(secs => $2)
    FROM senders s
   WHERE s.source_ip IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM source_hosts h WHERE h.ip = s.source_ip)
   LIMIT $1
  ON CONFLICT (ip) DO NOTHING
  RETURNING host(ip) AS ip, ptr`;

// Expired entries keep their name while they are looked up again, so attribution goes on
// using it. Moving expires_at ahead is the claim.
const CLAIM_EXPIRED = `
  UPDATE source_hosts h SET expires_at = now() + make_interval(secs => $2)
    FROM (SELECT ip FROM source_hosts
           WHERE expires_at <= now()
           ORDER BY expires_at
           LIMIT $1
             FOR UPDATE SKIP LOCKED) due
   WHERE h.ip = due.ip
  RETURNING host(h.ip) AS ip, h.ptr`;

// A failed refresh (timeout, server error) keeps a name that was confirmed before, because
// a failed query is no evidence against a name that resolved back at the last lookup.
const SAVE_RESULTS = `
  UPDATE source_hosts h
     SET state = CASE WHEN u.state IN ('timeout', 'error') AND h.ptr IS NOT NULL
                      THEN 'ok' ELSE u.state END,
         ptr = CASE WHEN u.state IN ('timeout', 'error') THEN h.ptr ELSE u.ptr END,
         names = CASE WHEN u.state IN ('timeout', 'error') THEN h.names
                      ELSE ARRAY(SELECT jsonb_array_elements_text(u.names)) END,
         error = u.error,
         looked_up_at = now(),
         expires_at = now() + make_interval(secs => u.ttl)
    FROM jsonb_to_recordset($1::jsonb)
         AS u(ip inet, state text, ptr text, names jsonb, error text, ttl integer)
   WHERE h.ip = u.ip`;

const RESET_ATTRIBUTION = `
  UPDATE senders SET attributed_version = NULL WHERE source_ip = ANY($1::inet[])`;

/**
 * Looks up one batch of addresses that have no entry or an expired one, and stores the
 * results. Returns what it did, with `lookedUp` 0 when nothing was due.
 */
export async function enrichSourceHosts(
  pool: pg.Pool,
  lookup: ReverseDnsLookup,
  options: EnrichmentOptions = {},
): Promise<EnrichmentBatch> {
  const batchSize = options.batchSize ?? 200;
  const lease = options.leaseSeconds ?? 120;
  const ttl = { ...DEFAULT_CACHE_TTL_SECONDS, ...options.ttlSeconds };

  let { rows: claimed } = await pool.query<{ ip: string; ptr: string | null }>(CLAIM_NEW, [
    batchSize,
    lease,
  ]);
  if (claimed.length === 0) {
    ({ rows: claimed } = await pool.query(CLAIM_EXPIRED, [batchSize, lease]));
  }
  if (claimed.length === 0) return { lookedUp: 0, changed: 0 };

  // No database connection is held while the lookups run.
  const results = await lookup.lookupMany(claimed.map((row) => row.ip));
  const rows = claimed.map(({ ip }) => {
    const result = results.get(ip) as ReverseDnsResult;
    return {
      ip,
      state: result.state,
      ptr: result.ptr,
      names: result.names,
      error: result.error,
      ttl: ttl[result.state],
    };
  });
  await pool.query(SAVE_RESULTS, [JSON.stringify(rows)]);

  const changed = claimed
    .filter(({ ip, ptr }) => {
      const result = results.get(ip) as ReverseDnsResult;
      const failed = result.state === 'timeout' || result.state === 'error';
      return !failed && result.ptr !== ptr;
    })
    .map(({ ip }) => ip);
  if (changed.length > 0) await pool.query(RESET_ATTRIBUTION, [changed]);
  return { lookedUp: claimed.length, changed: changed.length };
}

// How often the worker looks for new or expired addresses when no rollup woke it.
const ENRICHMENT_IDLE_SECONDS = 60;

/**
 * Creates the worker that keeps source_hosts filled. Its `onDone` receives the number of
 * addresses whose confirmed name changed, so that attribution can be woken.
 */
export function createEnrichmentWorker(
  pool: pg.Pool,
  log: Logger,
  lookup: ReverseDnsLookup,
  options: EnrichmentOptions = {},
): RepeatingJob {
  const workerLog = log.child({ component: 'enrichment' });
  return new RepeatingJob(
    'Reverse DNS enrichment',
    workerLog,
    async (signal) => {
      let lookedUp = 0;
      let changed = 0;
      for (;;) {
        if (signal.aborted) break;
        const batch = await enrichSourceHosts(pool, lookup, options);
        if (batch.lookedUp === 0) break;
        lookedUp += batch.lookedUp;
        changed += batch.changed;
      }
      if (lookedUp > 0) workerLog.info({ lookedUp, changed }, 'Looked up reverse DNS of sources');
      return changed;
    },
    ENRICHMENT_IDLE_SECONDS,
  );
}
