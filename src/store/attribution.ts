/**
 * Attribution of senders to catalog services, written to the senders table. A sender whose
 * attributed_version is null or older than the catalog version is attributed (again), so a
 * catalog change recomputes all history without touching records. Runs after rollups, outside
 * the ingest transaction.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

import {
  compileCatalog,
  type Attribution,
  type CatalogMatcher,
  type SourceEvidence,
} from '../analyze/attribution.js';
import type { SendingService, ServiceCatalog, ServiceRules } from '../analyze/catalog.js';
import { findProvider } from '../analyze/providers.js';
import { Backoff, sleep } from '../ingest/backoff.js';
import { findCatalog, findCatalogVersion } from './catalog.js';
import { streamRows } from './cursor.js';

// Senders attributed per transaction: a few hundred milliseconds of work, short row locks.
const BATCH_SENDERS = 1000;

// ORDER BY takes the row locks in one order, so that two workers skip instead of deadlocking.
const CLAIM_SENDERS = `
  SELECT s.sender_key, host(s.source_ip) AS source_ip, s.header_from, s.envelope_from,
         s.dkim, s.spf, h.ptr
    FROM senders s
    LEFT JOIN source_hosts h ON h.ip = s.source_ip AND h.state = 'ok'
   WHERE s.attributed_version IS NULL OR s.attributed_version < $1
   ORDER BY s.attributed_version NULLS FIRST, s.sender_key
   LIMIT $2
   FOR UPDATE OF s SKIP LOCKED`;

const SAVE_ATTRIBUTIONS = `
  UPDATE senders s
     SET service = u.service, provider = u.provider, attribution_rule = u.rule,
         attribution_confidence = u.confidence, attributed_version = $6
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
         AS u(sender_key, service, provider, rule, confidence)
   WHERE s.sender_key = u.sender_key`;

// Totals over every owned report, for `services check`.
const SENDERS_WITH_TOTALS = `
  SELECT s.sender_key, host(s.source_ip) AS source_ip, s.header_from, s.envelope_from,
         s.dkim, s.spf, h.ptr, t.messages
    FROM senders s
    JOIN (SELECT sender_key, sum(messages) AS messages
            FROM daily_sender_stats
           WHERE NOT is_foreign
           GROUP BY sender_key) t ON t.sender_key = s.sender_key
    LEFT JOIN source_hosts h ON h.ip = s.source_ip AND h.state = 'ok'`;

/** A row of senders with the forward-confirmed PTR name of its address. */
interface SenderRow {
  sender_key: string;
  source_ip: string | null;
  header_from: string | null;
  envelope_from: string | null;
  dkim: SourceEvidence['dkim'];
  spf: SourceEvidence['spf'];
  ptr: string | null;
}

/** The attribution columns of a sender. */
export interface SenderAttribution {
  service: string | null;
  /** The provider the mail went through, also for mail attributed to a service. */
  provider: string | null;
  rule: string | null;
  confidence: string | null;
}

/** Reads a senders row as the evidence that attribution uses. */
export function senderEvidence(row: SenderRow): SourceEvidence {
  return {
    ip: row.source_ip,
    ptr: row.ptr,
    headerFrom: row.header_from,
    envelopeFrom: row.envelope_from,
    dkim: row.dkim ?? [],
    spf: row.spf ?? [],
  };
}

function isPass(result: string | null | undefined): boolean {
  return result?.trim().toLowerCase() === 'pass';
}

/** Attributes one sender and names its provider, which selects the fix text of a diagnosis. */
export function attributeSender(
  source: SourceEvidence,
  matcher: CatalogMatcher,
): SenderAttribution & { attribution: Attribution } {
  const attribution = matcher.attribute(source);
  if (attribution.kind === 'provider') {
    return {
      attribution,
      service: null,
      provider: attribution.provider,
      rule: attribution.rule,
      confidence: attribution.confidence,
    };
  }
  if (attribution.kind === 'unattributed') {
    return { attribution, service: null, provider: null, rule: null, confidence: null };
  }
  const provider = findProvider({
    ptr: source.ptr,
    dkimDomains: source.dkim.filter((s) => isPass(s.result)).map((s) => s.domain),
    spfDomains: source.spf.filter((s) => isPass(s.result)).map((s) => s.domain),
    envelopeFrom: source.envelopeFrom,
  });
  return {
    attribution,
    service: attribution.service,
    provider: provider?.provider.id ?? null,
    rule: attribution.rule,
    confidence: attribution.confidence,
  };
}

/** Keeps the compiled catalog between batches, compiling again only when the version moves. */
export class CatalogCache {
  private cached: { version: number; matcher: CatalogMatcher } | null = null;

  /** Returns the matcher of the current catalog version. */
  async current(pool: pg.Pool): Promise<{ version: number; matcher: CatalogMatcher }> {
    const version = await findCatalogVersion(pool);
    if (this.cached?.version !== version) {
      // findCatalog reads the version and the services in one snapshot, so a change committed
      // since the line above yields the newer pair, never a mixed one.
      const stored = await findCatalog(pool);
      this.cached = { version: stored.version, matcher: compileCatalog(stored.catalog) };
    }
    return this.cached;
  }
}

/**
 * Attributes one batch of senders that are not attributed under the current catalog version.
 * Returns how many it attributed, 0 when none was waiting. Several processes may run it at
 * once, because each batch is claimed with SKIP LOCKED.
 */
export async function attributeSenderBatch(
  pool: pg.Pool,
  cache: CatalogCache,
  batchSize = BATCH_SENDERS,
): Promise<number> {
  const { version, matcher } = await cache.current(pool);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<SenderRow>(CLAIM_SENDERS, [version, batchSize]);
    if (rows.length === 0) {
      await client.query('ROLLBACK');
      return 0;
    }

    const columns = {
      keys: [] as string[],
      service: [],
      provider: [],
      rule: [],
      confidence: [],
    } as {
      keys: string[];
      service: (string | null)[];
      provider: (string | null)[];
      rule: (string | null)[];
      confidence: (string | null)[];
    };
    for (const row of rows) {
      const result = attributeSender(senderEvidence(row), matcher);
      columns.keys.push(row.sender_key);
      columns.service.push(result.service);
      columns.provider.push(result.provider);
      columns.rule.push(result.rule);
      columns.confidence.push(result.confidence);
    }
    await client.query(SAVE_ATTRIBUTIONS, [
      columns.keys,
      columns.service,
      columns.provider,
      columns.rule,
      columns.confidence,
      version,
    ]);
    await client.query('COMMIT');
    return rows.length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Attributes every waiting sender; returns the count. */
export async function attributeAllSenders(
  pool: pg.Pool,
  log?: Logger,
  cache = new CatalogCache(),
): Promise<number> {
  let total = 0;
  for (let count = await attributeSenderBatch(pool, cache); count > 0;) {
    total += count;
    count = await attributeSenderBatch(pool, cache);
  }
  if (total > 0) log?.debug({ senders: total }, 'Attributed senders');
  return total;
}

/** Senders and messages that one catalog rule attributed. */
export interface RuleMatch {
  /** Service name, or `''` for senders no service claims. */
  service: string;
  /**
   * The rule as attribution names it, e.g. `ip 203.0.113.0/24`. Senders no service claims have
   * their provider rule here, or `''`.
   */
  rule: string;
  senders: number;
  messages: number;
}

/** One rule of a service, alone, with the name attribution gives it. */
export interface SingleRule {
  rule: string;
  rules: ServiceRules;
}

const NO_RULES: ServiceRules = { ip: [], ptr: [], dkim: [], spf: [], headerFrom: [], provider: [] };

/** Splits a service's rules into single rules, named as attribution names them when they win. */
export function splitRules(service: SendingService): SingleRule[] {
  const { rules } = service;
  return [
    ...rules.ip.map((range) => ({ rule: `ip ${range}`, rules: { ...NO_RULES, ip: [range] } })),
    ...rules.dkim.map((dkim) => ({
      rule:
        dkim.selector === null
          ? `dkim d=${dkim.domain}`
          : `dkim d=${dkim.domain} s=${dkim.selector}`,
      rules: { ...NO_RULES, dkim: [dkim] },
    })),
    ...rules.spf.map((name) => ({ rule: `spf ${name}`, rules: { ...NO_RULES, spf: [name] } })),
    ...rules.ptr.map((name) => ({ rule: `ptr ${name}`, rules: { ...NO_RULES, ptr: [name] } })),
    ...rules.provider.map((id) => ({
      rule: `provider ${id}`,
      rules: { ...NO_RULES, provider: [id] },
    })),
    ...rules.headerFrom.map((name) => ({
      rule: `header_from ${name}`,
      rules: { ...NO_RULES, headerFrom: [name] },
    })),
  ];
}

/** Rule matches of a catalog in the stored senders, for `services check`. */
export interface RuleMatches {
  /** The rule that won each sender under the whole catalog, with the senders no service claims. */
  wins: RuleMatch[];
  /** Matches of each rule on its own, whether or not a stronger rule wins the sender. */
  alone: RuleMatch[];
}

/**
 * Attributes every stored sender under `catalog` without saving anything, and counts the
 * senders and messages (of owned reports) each rule wins, and each rule matches on its own.
 * Senders that no service claims are counted under service `''` with their provider rule, or
 * rule `''` when unattributed.
 */
export async function findRuleMatches(
  pool: pg.Pool,
  catalog: ServiceCatalog,
): Promise<RuleMatches> {
  const matcher = compileCatalog(catalog);
  const singles = catalog.services.flatMap((service) =>
    splitRules(service).map((single) => ({
      service: service.name,
      rule: single.rule,
      matcher: compileCatalog({ services: [{ ...service, rules: single.rules }] }),
      senders: 0,
      messages: 0,
    })),
  );
  const wins = new Map<string, RuleMatch>();

  for await (const rows of streamRows<SenderRow & { messages: number }>(
    pool,
    SENDERS_WITH_TOTALS,
    [],
  )) {
    for (const row of rows) {
      const source = senderEvidence(row);
      const result = attributeSender(source, matcher);
      const service = result.service ?? '';
      const rule =
        result.attribution.kind === 'provider'
          ? `provider ${result.attribution.provider}`
          : (result.rule ?? '');
      const key = `${service}\u0000${rule}`;
      let match = wins.get(key);
      if (!match) wins.set(key, (match = { service, rule, senders: 0, messages: 0 }));
      match.senders += 1;
      match.messages += row.messages;

      for (const single of singles) {
        if (single.matcher.attribute(source).kind !== 'service') continue;
        single.senders += 1;
        single.messages += row.messages;
      }
    }
  }
  return {
    wins: [...wins.values()],
    alone: singles.map(({ service, rule, senders, messages }) => ({
      service,
      rule,
      senders,
      messages,
    })),
  };
}

/**
 * Runs a job now when woken and otherwise every `idleSeconds`, with backoff while it fails.
 * A database outage pauses it, and nothing is lost, because pending work is marked in the
 * database.
 */
export class RepeatingJob {
  private readonly controller = new AbortController();
  private running: Promise<void> | null = null;
  private wakeUp = new AbortController();
  private readonly backoff = new Backoff(1000, 60_000);
  /** Called after a run that did work, with the count the job returned. */
  onDone: (count: number) => void = () => {};

  constructor(
    private readonly name: string,
    private readonly log: Logger,
    private readonly job: (signal: AbortSignal) => Promise<number>,
    private readonly idleSeconds: number,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Asks for a run now. A wake during a run causes one more run right after it. */
  wake(): void {
    this.wakeUp.abort();
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.wakeUp.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.controller;
    while (!signal.aborted) {
      const wakeUp = (this.wakeUp = new AbortController());
      try {
        const count = await this.job(signal);
        if (count > 0) this.onDone(count);
        this.backoff.reset();
        await sleep(this.idleSeconds * 1000, AbortSignal.any([signal, wakeUp.signal]));
      } catch (error) {
        const delay = this.backoff.nextDelay();
        this.log.error(
          { err: error, job: this.name, retryInMs: delay },
          `${this.name} failed; retrying`,
        );
        await sleep(delay, signal);
      }
    }
  }
}

// How often the worker looks for senders that other instances stored or a catalog change made
// stale. A rollup or a catalog change in this process wakes it at once.
const ATTRIBUTION_IDLE_SECONDS = 30;

/** Creates the worker that keeps every sender attributed under the current catalog. */
export function createAttributionWorker(pool: pg.Pool, log: Logger): RepeatingJob {
  const workerLog = log.child({ component: 'attribution' });
  const cache = new CatalogCache();
  return new RepeatingJob(
    'Attribution',
    workerLog,
    async (signal) => {
      let total = 0;
      for (let count = -1; count !== 0 && !signal.aborted;) {
        count = await attributeSenderBatch(pool, cache);
        total += count;
      }
      if (total > 0) workerLog.debug({ senders: total }, 'Attributed senders');
      return total;
    },
    ATTRIBUTION_IDLE_SECONDS,
  );
}
