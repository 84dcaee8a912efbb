/**
 * Reverse DNS of source IPs with forward confirmation: the PTR name must resolve back to the IP.
 * The owner of an address's reverse zone can write any name there, so an unconfirmed name must
 * not satisfy a PTR suffix rule or a provider match. Lookups run through an injectable
 * resolver, a small queue, a per-lookup timeout and a cache that the store can back with a table.
 */
import { Resolver } from 'node:dns/promises';

import { parseIpAddress, reverseDnsName } from './ip-range.js';
import { normalizeDomain } from './org-domain.js';

/** Outcome of one reverse lookup. */
export type ReverseDnsState = 'ok' | 'no-ptr' | 'not-confirmed' | 'timeout' | 'error';

/** Reverse DNS of one IP. */
export interface ReverseDnsResult {
  ip: string;
  state: ReverseDnsState;
  /** The first PTR name whose A/AAAA records contain the IP; null unless `state` is `ok`. */
  ptr: string | null;
  /** Every PTR name returned, confirmed or not. */
  names: string[];
  /** The error code or message for `timeout` and `error`, else null. */
  error: string | null;
}

/** The DNS queries enrichment needs; `node:dns/promises` `Resolver` has this shape. */
export interface DnsResolver {
  /** PTR records of a name such as `9.113.0.203.in-addr.arpa`. */
  resolvePtr(name: string): Promise<string[]>;
  resolve4(hostname: string): Promise<string[]>;
  resolve6(hostname: string): Promise<string[]>;
}

/** Storage for results between lookups, which the store may back with a table. */
export interface ReverseDnsCache {
  get(ip: string): ReverseDnsResult | undefined | Promise<ReverseDnsResult | undefined>;
  set(ip: string, result: ReverseDnsResult, ttlSeconds: number): void | Promise<void>;
}

/** Options of `ReverseDnsLookup`. */
export interface ReverseDnsOptions {
  /** Default: `createSystemResolver({ timeoutMs })`, the servers of the operating system. */
  resolver?: DnsResolver;
  /** Default: a `MemoryReverseDnsCache`. Pass null to look every IP up each time. */
  cache?: ReverseDnsCache | null;
  /** Lookups in flight at once. Default 8. */
  concurrency?: number;
  /** Deadline for one IP, PTR and forward queries together, in milliseconds. Default 3000. */
  timeoutMs?: number;
  /** PTR names checked for forward confirmation. Default 5. */
  maxNames?: number;
  /** Cache lifetime per state, in seconds. Default `DEFAULT_CACHE_TTL_SECONDS`. */
  ttlSeconds?: Partial<Record<ReverseDnsState, number>>;
}

/**
 * Cache lifetimes per state, in seconds. Found names last a day, because PTR records rarely
 * change and `node:dns` does not return their TTL. Failures are retried after five minutes.
 */
export const DEFAULT_CACHE_TTL_SECONDS: Readonly<Record<ReverseDnsState, number>> = Object.freeze({
  ok: 86_400,
  'not-confirmed': 86_400,
  'no-ptr': 21_600,
  timeout: 300,
  error: 300,
});

const NO_DATA_CODES = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * Creates a `node:dns/promises` resolver that tries each query once with a short timeout.
 * @param options.servers `host` or `host:port` entries; default the operating system's servers
 */
export function createSystemResolver(
  options: { servers?: string[]; timeoutMs?: number } = {},
): DnsResolver {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 3000, tries: 1 });
  if (options.servers) resolver.setServers(options.servers);
  return resolver;
}

/** An in-memory cache with expiry and a size cap, for tests and single-process runs. */
export class MemoryReverseDnsCache implements ReverseDnsCache {
  private readonly entries = new Map<string, { result: ReverseDnsResult; expiresAt: number }>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(ip: string): ReverseDnsResult | undefined {
    const entry = this.entries.get(ip);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(ip);
      return undefined;
    }
    return entry.result;
  }

  set(ip: string, result: ReverseDnsResult, ttlSeconds: number): void {
    // Maps iterate in insertion order, so the first key is the oldest entry.
    if (this.entries.size >= this.maxEntries)
      this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(ip, { result, expiresAt: this.now() + ttlSeconds * 1000 });
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : String((error as Error)?.message ?? error);
}

class TimeoutError extends Error {
  readonly code = 'ETIMEOUT';
}

/** Looks up and forward-confirms the PTR names of source IPs, with queueing and caching. */
export class ReverseDnsLookup {
  private readonly resolver: DnsResolver;
  private readonly cache: ReverseDnsCache | null;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly maxNames: number;
  private readonly ttlSeconds: Record<ReverseDnsState, number>;
  private readonly inFlight = new Map<string, Promise<ReverseDnsResult>>();
  private readonly waiting: (() => void)[] = [];
  private active = 0;

  constructor(options: ReverseDnsOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.resolver = options.resolver ?? createSystemResolver({ timeoutMs: this.timeoutMs });
    this.cache = options.cache === undefined ? new MemoryReverseDnsCache() : options.cache;
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.maxNames = Math.max(1, options.maxNames ?? 5);
    this.ttlSeconds = { ...DEFAULT_CACHE_TTL_SECONDS, ...options.ttlSeconds };
  }

  /** Returns the reverse DNS of one IP, from the cache when present. */
  lookup(ip: string): Promise<ReverseDnsResult> {
    const key = ip.trim().toLowerCase();
    const pending = this.inFlight.get(key);
    if (pending) return pending;

    const promise = this.lookupUncached(key).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Looks up many IPs through the queue; the map is keyed by the IP text as given. */
  async lookupMany(ips: Iterable<string>): Promise<Map<string, ReverseDnsResult>> {
    const unique = [...new Set(ips)];
    const results = await Promise.all(unique.map((ip) => this.lookup(ip)));
    return new Map(unique.map((ip, index) => [ip, results[index]]));
  }

  private async lookupUncached(ip: string): Promise<ReverseDnsResult> {
    const cached = await this.cache?.get(ip);
    if (cached) return cached;

    await this.acquire();
    let result: ReverseDnsResult;
    try {
      result = await this.withDeadline(ip);
    } finally {
      this.release();
    }
    await this.cache?.set(ip, result, this.ttlSeconds[result.state]);
    return result;
  }

  private async withDeadline(ip: string): Promise<ReverseDnsResult> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`timed out after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([this.resolve(ip), deadline]);
    } catch (error) {
      const code = errorCode(error);
      const state: ReverseDnsState = code === 'ETIMEOUT' ? 'timeout' : 'error';
      return { ip, state, ptr: null, names: [], error: code };
    } finally {
      clearTimeout(timer);
    }
  }

  private async resolve(ip: string): Promise<ReverseDnsResult> {
    const address = parseIpAddress(ip);
    if (address === null) {
      return { ip, state: 'error', ptr: null, names: [], error: `invalid IP address "${ip}"` };
    }

    let names: string[];
    try {
      // resolvePtr rather than reverse(): node's reverse() reports a server failure as
      // ENOTFOUND, which would read as "no PTR record". A mapped IPv4 address is queried
      // under in-addr.arpa, like plain IPv4.
      names = (await this.resolver.resolvePtr(reverseDnsName(address))).map(
        (name) => normalizeDomain(name) ?? name,
      );
    } catch (error) {
      if (NO_DATA_CODES.has(errorCode(error)))
        return { ip, state: 'no-ptr', ptr: null, names: [], error: null };
      throw error;
    }
    if (names.length === 0) return { ip, state: 'no-ptr', ptr: null, names: [], error: null };

    // A PTR name counts only if it resolves back to the same address (forward-confirmed rDNS).
    let failure: unknown = null;
    for (const name of names.slice(0, this.maxNames)) {
      try {
        const addresses =
          address.family === 4
            ? await this.resolver.resolve4(name)
            : await this.resolver.resolve6(name);
        const confirmed = addresses.some((text) => {
          const forward = parseIpAddress(text);
          return (
            forward !== null && forward.family === address.family && forward.value === address.value
          );
        });
        if (confirmed) return { ip, state: 'ok', ptr: name, names, error: null };
      } catch (error) {
        if (!NO_DATA_CODES.has(errorCode(error))) failure = error;
      }
    }

    // A name that could not be checked (timeout, server failure) is not proof of a mismatch.
    if (failure !== null) throw failure;
    return { ip, state: 'not-confirmed', ptr: null, names, error: null };
  }

  private acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
