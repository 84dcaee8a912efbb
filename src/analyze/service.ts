/**
 * The analysis facade that the CLI and the HTTP API share: keeps the data current (rollups,
 * attribution), reads the window, and turns the stored totals into service summaries,
 * diagnoses, recommendations and what-if replays. The workers that keep attribution and
 * reverse DNS current in `serve` start through `startAnalysisWorkers`.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

import type { Config } from '../config.js';
import {
  addServiceSource,
  catalogToJson,
  findCatalog,
  syncCatalogFile,
  updateCatalog,
  type AddSourceResult,
  type CatalogServiceJson,
  type CatalogUpdate,
  type StoredCatalog,
} from '../store/catalog.js';
import {
  attributeAllSenders,
  CatalogCache,
  createAttributionWorker,
  findRuleMatches,
  splitRules,
  type RuleMatches,
} from '../store/attribution.js';
import {
  buildDomainEvidence,
  buildReplayRows,
  findAttributedSources,
  findLastDay,
  findPublishedPolicies,
  findSenderTotals,
  findServiceDays,
  streamAttributedSources,
  summarizeDiagnoses,
  type AnalysisFilter,
  type AttributedSource,
  type DiagnosisTotals,
  type PublishedPolicy,
  type SenderTotals,
  type ServiceDay,
} from '../store/analysis.js';
import { createEnrichmentWorker } from '../store/enrichment.js';
import type { RollupWorker } from '../store/rollup-worker.js';
import { rollUpAllReports } from '../store/rollups.js';
import type { SendingService, ServiceCatalog } from './catalog.js';
import type { DiagnosisCode } from './diagnosis.js';
import { createSystemResolver, ReverseDnsLookup, type DnsResolver } from './enrichment.js';
import {
  formatDmarcRecord,
  parseDmarcRecord,
  parsePolicyRequest,
  type DmarcPolicy,
} from './policy.js';
import {
  DEFAULT_THRESHOLDS,
  nextPolicyStep,
  recommend,
  type Recommendation,
  type RecommendationThresholds,
} from './recommendations.js';
import { whatIf, type WhatIfCounts } from './what-if.js';

/**
 * Days of history analysed when the request names no start: the 30 days up to the last day
 * with data. Long enough for the 14 days and weekly senders that recommendations need, short
 * enough that a service fixed a month ago no longer shows its old failures.
 */
export const DEFAULT_WINDOW_DAYS = 30;

/** Filters as a caller gives them. A missing window becomes the default one. */
export type AnalysisRequest = Partial<AnalysisFilter>;

/** Totals of one service, or of mail no service claims, over the window. */
export interface ServiceSummary {
  /** `service` for a catalog service, `provider` for a known provider outside the catalog. */
  kind: 'service' | 'provider' | 'unattributed';
  /** Service name, or `''` for the other kinds. */
  service: string;
  provider: string | null;
  team: string | null;
  contact: string | null;
  messages: number;
  dmarc_pass: number;
  dmarc_fail: number;
  pass_rate: number | null;
  /** Messages whose DKIM (or SPF) passed aligned, as the reporters evaluated it. */
  dkim_aligned: number;
  spf_aligned: number;
  dkim_aligned_rate: number | null;
  spf_aligned_rate: number | null;
  quarantined: number;
  rejected: number;
  sources: number;
  senders: number;
  domains: string[];
  providers: string[];
  /** The attribution rules that matched, with their totals. */
  rules: { rule: string; senders: number; messages: number }[];
  diagnoses: { code: DiagnosisCode; summary: string; fix: string | null; messages: number }[];
  /** Messages and pass rate per UTC day with mail. */
  daily: { day: string; messages: number; pass: number; pass_rate: number | null }[];
  first_seen: string | null;
  last_seen: string | null;
}

/** A what-if replay of one domain under one candidate policy. */
export interface WhatIfReport {
  domain: string;
  /** The candidate policy as the DNS record to publish. */
  policy: string;
  /** The published policy the reports show now, or null when unknown. */
  current_policy: string | null;
  from: string | null;
  to: string | null;
  services: WhatIfRow[];
  unattributed: WhatIfRow;
  total: WhatIfRow;
  other_domain_messages: number;
  notes: string[];
}

/** Messages of one service under the candidate policy. Counts under pct are expected values. */
export interface WhatIfRow {
  service: string;
  messages: number;
  pass: number;
  overridden: number;
  delivered: number;
  quarantine: number;
  reject: number;
}

/** Matches of a catalog's rules in stored data, for `services check`. */
export interface CatalogCheck {
  services: {
    name: string;
    /** Senders and messages the service wins under the whole catalog. */
    senders: number;
    messages: number;
    /**
     * Totals per rule, under the whole catalog and for the rule on its own. A rule that
     * matches on its own but never wins is shadowed by a stronger rule.
     */
    rules: {
      rule: string;
      senders: number;
      messages: number;
      alone_senders: number;
      alone_messages: number;
    }[];
  }[];
  /** Known providers outside the catalog. */
  providers: { rule: string; senders: number; messages: number }[];
  unattributed: { senders: number; messages: number };
}

/** The catalog as the API shows it. */
export interface CatalogView {
  version: number;
  file: { path: string; in_sync: boolean; loaded_version: number; loaded_at: string } | null;
  services: CatalogServiceJson[];
}

function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function rate(part: number, whole: number): number | null {
  return whole > 0 ? round(part / whole, 4) : null;
}

function shiftDay(day: string, days: number): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/** Reads a published policy from a report as a policy record, or null when `p` is unreadable. */
export function policyFromReport(domain: string, reported: PublishedPolicy): DmarcPolicy | null {
  const p = parsePolicyRequest(reported.p);
  if (p === null) return null;
  const mode = (value: string | null) => {
    const text = value?.trim().toLowerCase();
    return text === 'r' || text === 's' ? text : null;
  };
  const testing = reported.testing?.trim().toLowerCase();
  return {
    domain,
    p,
    sp: parsePolicyRequest(reported.sp),
    np: parsePolicyRequest(reported.np),
    pct: reported.pct,
    t: testing === 'y' || testing === 'n' ? testing : null,
    adkim: mode(reported.adkim),
    aspf: mode(reported.aspf),
    fo: reported.fo,
  };
}

function toWhatIfRow(counts: WhatIfCounts): WhatIfRow {
  return {
    service: counts.service,
    messages: counts.messages,
    pass: round(counts.pass),
    overridden: round(counts.overridden),
    delivered: round(counts.none),
    quarantine: round(counts.quarantine),
    reject: round(counts.reject),
  };
}

/** The analysis of the stored reports, shared by the CLI and the HTTP API. */
export class AnalysisService {
  readonly pool: pg.Pool;
  readonly log: Logger;
  private readonly servicesFile: string | undefined;
  private readonly thresholds: RecommendationThresholds;
  private readonly windowDays: number;
  private readonly catalogCache = new CatalogCache();
  /** Called after this process changed the catalog. `startAnalysisWorkers` wakes attribution here. */
  onCatalogChanged: (version: number) => void = () => {};

  constructor(options: {
    pool: pg.Pool;
    log: Logger;
    config: Pick<Config, 'servicesFile'>;
    thresholds?: Partial<RecommendationThresholds>;
    windowDays?: number;
  }) {
    this.pool = options.pool;
    this.log = options.log;
    this.servicesFile = options.config.servicesFile;
    this.thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
    this.windowDays = options.windowDays ?? DEFAULT_WINDOW_DAYS;
  }

  /**
   * Loads SERVICES_FILE into the database when it changed since the last load.
   * @throws CatalogError naming the file, the service and the rule, when the file is invalid
   */
  async syncCatalogFile(): Promise<CatalogUpdate | null> {
    if (!this.servicesFile) return null;
    const update = await syncCatalogFile(this.pool, this.servicesFile, this.log);
    if (update.changed) this.onCatalogChanged(update.version);
    return update;
  }

  /** Rolls up waiting reports and attributes waiting senders, so that reads are current. */
  async refresh(): Promise<{ reports: number; senders: number }> {
    const reports = await rollUpAllReports(this.pool, this.log);
    const senders = await attributeAllSenders(this.pool, this.log, this.catalogCache);
    return { reports, senders };
  }

  /** Fills in the default window: `windowDays` days up to `to`, or to the last day with data. */
  async resolveFilter(request: AnalysisRequest = {}): Promise<AnalysisFilter> {
    const filter: AnalysisFilter = {
      from: request.from ?? null,
      to: request.to ?? null,
      domain: request.domain?.trim().toLowerCase().replace(/\.+$/, '') || null,
      service: request.service?.trim() || null,
      reporter: request.reporter ?? null,
    };
    if (filter.from === null) {
      const end = filter.to ?? (await findLastDay(this.pool, filter.domain));
      if (end !== null) filter.from = shiftDay(end, -(this.windowDays - 1));
      filter.to ??= end;
    }
    return filter;
  }

  private async senderTotals(filter: AnalysisFilter) {
    const [rows, policies] = await Promise.all([
      findSenderTotals(this.pool, filter),
      findPublishedPolicies(this.pool, filter.domain),
    ]);
    return { rows, policies };
  }

  /** Returns recommendations per domain and service. A service filter keeps its own items. */
  async recommendations(
    request: AnalysisRequest = {},
  ): Promise<{ filter: AnalysisFilter; rows: Recommendation[] }> {
    const filter = await this.resolveFilter(request);
    // Domain-wide steps need every service's evidence, so the service filter applies after.
    const { rows, policies } = await this.senderTotals({ ...filter, service: null });
    let items = recommend(buildDomainEvidence(rows, policies), this.thresholds);
    if (filter.service !== null) {
      const serviceName = filter.service.toLowerCase();
      items = items.filter((item) => item.service.toLowerCase() === serviceName);
    }
    return { filter, rows: items };
  }

  /**
   * Replays the window of one domain, or of every domain, under a candidate policy. Without a
   * policy, each domain's next step from its published policy is replayed.
   * @throws Error naming the tag when `policy` is not a valid DMARC record
   */
  async whatIf(
    request: AnalysisRequest,
    policy: string | null = null,
  ): Promise<{ filter: AnalysisFilter; results: WhatIfReport[] }> {
    const filter = await this.resolveFilter(request);
    if (policy !== null && filter.domain === null) {
      throw new Error(
        'A candidate policy needs a domain: give the domain it would be published on',
      );
    }
    const candidate = policy === null ? null : parseDmarcRecord(policy, filter.domain as string);
    const { rows, policies } = await this.senderTotals(filter);

    const domains = filter.domain !== null ? [filter.domain] : [...policies.keys()].sort();
    const results: WhatIfReport[] = [];
    for (const domain of domains) {
      const published = policies.get(domain);
      const current = published ? policyFromReport(domain, published) : null;
      const chosen =
        candidate ?? (current ? nextPolicyStep(current, this.thresholds.pctRamp) : null);
      if (chosen === null) continue;

      // A domain's own reports and those of its subdomains, as the policy's reach.
      const domainRows = rows.filter(
        (row) => row.domain === domain || row.domain.endsWith(`.${domain}`),
      );
      const result = whatIf(buildReplayRows(domainRows), chosen);
      results.push({
        domain,
        policy: formatDmarcRecord(chosen),
        current_policy: current ? formatDmarcRecord(current) : null,
        from: filter.from,
        to: filter.to,
        services: result.services.map(toWhatIfRow),
        unattributed: toWhatIfRow(result.unattributed),
        total: toWhatIfRow(result.total),
        other_domain_messages: result.otherDomainMessages,
        notes: result.notes,
      });
    }
    return { filter, results };
  }

  /** Returns diagnoses of failing mail per domain, service and cause, largest first. */
  async diagnoses(
    request: AnalysisRequest = {},
  ): Promise<{ filter: AnalysisFilter; rows: DiagnosisTotals[] }> {
    const filter = await this.resolveFilter(request);
    const { rows, policies } = await this.senderTotals(filter);
    return { filter, rows: summarizeDiagnoses(rows, policies) };
  }

  /** Returns one page of source addresses with reverse DNS and attribution. */
  async sources(
    request: AnalysisRequest,
    page: { sort: string; order: 'asc' | 'desc'; page: number; pageSize: number },
  ): Promise<{ filter: AnalysisFilter; rows: AttributedSource[]; total: number }> {
    const filter = await this.resolveFilter(request);
    return { filter, ...(await findAttributedSources(this.pool, filter, page)) };
  }

  /** Streams every source address of the window in batches, for CSV. */
  async streamSources(
    request: AnalysisRequest,
    sort: { sort: string; order: 'asc' | 'desc' },
  ): Promise<AsyncGenerator<AttributedSource[]>> {
    const filter = await this.resolveFilter(request);
    return streamAttributedSources(this.pool, filter, sort);
  }

  /** Returns totals per catalog service, per provider outside the catalog, and unattributed. */
  async services(
    request: AnalysisRequest = {},
  ): Promise<{ filter: AnalysisFilter; rows: ServiceSummary[] }> {
    const filter = await this.resolveFilter(request);
    const [{ rows, policies }, days, stored] = await Promise.all([
      this.senderTotals(filter),
      findServiceDays(this.pool, filter),
      findCatalog(this.pool),
    ]);
    return { filter, rows: summarizeServices(rows, policies, days, stored.catalog, filter) };
  }

  /** Returns the database copy of the catalog and whether SERVICES_FILE still matches it. */
  async catalog(): Promise<CatalogView> {
    return toCatalogView(await findCatalog(this.pool));
  }

  /** Returns the database copy of the catalog as parsed services. */
  async storedCatalog(): Promise<StoredCatalog> {
    return findCatalog(this.pool);
  }

  /**
   * Replaces the catalog. With `expectedVersion`, fails when someone changed it since.
   * @throws CatalogVersionConflict when `expectedVersion` is not the current version
   */
  async replaceCatalog(catalog: ServiceCatalog, expectedVersion?: number): Promise<CatalogUpdate> {
    const update = await updateCatalog(this.pool, (current) => {
      if (expectedVersion !== undefined && current.version !== expectedVersion) {
        throw new CatalogVersionConflict(expectedVersion, current.version);
      }
      return catalog;
    });
    if (update.changed) this.onCatalogChanged(update.version);
    return update;
  }

  /**
   * Adds an IP address or CIDR range to a service's `ip` rules.
   * @throws Error naming the range when it is invalid
   */
  async addSource(serviceName: string, range: string): Promise<AddSourceResult> {
    const result = await addServiceSource(this.pool, serviceName, range);
    if (result.status === 'added') this.onCatalogChanged(result.version);
    return result;
  }

  /** Attributes stored senders under `catalog`, without saving, and counts what each rule wins. */
  async checkCatalog(catalog: ServiceCatalog): Promise<CatalogCheck> {
    return summarizeRuleMatches(catalog, await findRuleMatches(this.pool, catalog));
  }
}

/** A catalog change based on an older version than the stored one. */
export class CatalogVersionConflict extends Error {
  readonly code = 'catalog-changed';

  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(
      `The catalog changed since version ${expected} (now ${actual}); reload it and apply the change again`,
    );
    this.name = 'CatalogVersionConflict';
  }
}

function toCatalogView(stored: StoredCatalog): CatalogView {
  return {
    version: stored.version,
    file: stored.file
      ? {
          path: stored.file.path,
          in_sync: stored.file.version === stored.version,
          loaded_version: stored.file.version,
          loaded_at: stored.file.loadedAt,
        }
      : null,
    services: catalogToJson(stored.catalog).services,
  };
}

function summarizeRuleMatches(catalog: ServiceCatalog, matches: RuleMatches): CatalogCheck {
  const check: CatalogCheck = {
    services: [],
    providers: [],
    unattributed: { senders: 0, messages: 0 },
  };
  for (const service of catalog.services) {
    const rules = splitRules(service).map(({ rule }) => {
      const won = matches.wins.find((m) => m.service === service.name && m.rule === rule);
      const alone = matches.alone.find((m) => m.service === service.name && m.rule === rule);
      return {
        rule,
        senders: won?.senders ?? 0,
        messages: won?.messages ?? 0,
        alone_senders: alone?.senders ?? 0,
        alone_messages: alone?.messages ?? 0,
      };
    });
    check.services.push({
      name: service.name,
      senders: rules.reduce((sum, rule) => sum + rule.senders, 0),
      messages: rules.reduce((sum, rule) => sum + rule.messages, 0),
      rules,
    });
  }
  for (const match of matches.wins) {
    if (match.service !== '') continue;
    if (match.rule === '') {
      check.unattributed = { senders: match.senders, messages: match.messages };
    } else {
      check.providers.push({ rule: match.rule, senders: match.senders, messages: match.messages });
    }
  }
  check.providers.sort((a, b) => b.messages - a.messages || a.rule.localeCompare(b.rule));
  return check;
}

interface SummaryBuilder extends ServiceSummary {
  ips: Set<string>;
  domainSet: Set<string>;
  providerSet: Set<string>;
  ruleTotals: Map<string, { rule: string; senders: number; messages: number }>;
  diagnosisTotals: Map<DiagnosisCode, ServiceSummary['diagnoses'][number] & { largest: number }>;
}

function emptySummary(
  kind: ServiceSummary['kind'],
  service: string,
  provider: string | null,
  catalogEntry: SendingService | undefined,
): SummaryBuilder {
  return {
    kind,
    service,
    provider,
    team: catalogEntry?.team ?? null,
    contact: catalogEntry?.contact ?? null,
    messages: 0,
    dmarc_pass: 0,
    dmarc_fail: 0,
    pass_rate: null,
    dkim_aligned: 0,
    spf_aligned: 0,
    dkim_aligned_rate: null,
    spf_aligned_rate: null,
    quarantined: 0,
    rejected: 0,
    sources: 0,
    senders: 0,
    domains: [],
    providers: [],
    rules: [],
    diagnoses: [],
    daily: [],
    first_seen: null,
    last_seen: null,
    ips: new Set(),
    domainSet: new Set(),
    providerSet: new Set(),
    ruleTotals: new Map(),
    diagnosisTotals: new Map(),
  };
}

function summaryKey(service: string, provider: string | null): string {
  return service !== '' ? `s\u0000${service}` : `p\u0000${provider ?? ''}`;
}

function addSender(
  summary: SummaryBuilder,
  row: SenderTotals,
  policies: ReadonlyMap<string, PublishedPolicy>,
): void {
  const failing = row.messages - row.pass;
  summary.messages += row.messages;
  summary.dmarc_pass += row.pass;
  summary.dmarc_fail += failing;
  summary.dkim_aligned += row.dkimPass;
  summary.spf_aligned += row.spfPass;
  summary.quarantined += row.quarantined;
  summary.rejected += row.rejected;
  summary.senders += 1;
  if (row.sourceIp !== null) summary.ips.add(row.sourceIp);
  summary.domainSet.add(row.domain);
  if (row.provider !== null) summary.providerSet.add(row.provider);

  const first = new Date(Math.min(...row.days) * 86_400_000).toISOString().slice(0, 10);
  const last = new Date(Math.max(...row.days) * 86_400_000).toISOString().slice(0, 10);
  if (summary.first_seen === null || first < summary.first_seen) summary.first_seen = first;
  if (summary.last_seen === null || last > summary.last_seen) summary.last_seen = last;

  if (row.rule !== null) {
    const rule = summary.ruleTotals.get(row.rule) ?? { rule: row.rule, senders: 0, messages: 0 };
    rule.senders += 1;
    rule.messages += row.messages;
    summary.ruleTotals.set(row.rule, rule);
  }

  for (const diagnosis of summarizeDiagnoses([row], policies)) {
    const entry = summary.diagnosisTotals.get(diagnosis.code);
    if (!entry) {
      summary.diagnosisTotals.set(diagnosis.code, {
        code: diagnosis.code,
        summary: diagnosis.summary,
        fix: diagnosis.fix,
        messages: diagnosis.messages,
        largest: failing,
      });
    } else {
      entry.messages += diagnosis.messages;
      if (failing > entry.largest) {
        Object.assign(entry, { summary: diagnosis.summary, fix: diagnosis.fix, largest: failing });
      }
    }
  }
}

function finishSummary(summary: SummaryBuilder): ServiceSummary {
  const { ips, domainSet, providerSet, ruleTotals, diagnosisTotals, ...rest } = summary;
  return {
    ...rest,
    pass_rate: rate(rest.dmarc_pass, rest.messages),
    dkim_aligned_rate: rate(rest.dkim_aligned, rest.messages),
    spf_aligned_rate: rate(rest.spf_aligned, rest.messages),
    sources: ips.size,
    domains: [...domainSet].sort(),
    providers: [...providerSet].sort(),
    rules: [...ruleTotals.values()].sort((a, b) => b.messages - a.messages),
    diagnoses: [...diagnosisTotals.values()]
      .map(({ largest: _largest, ...entry }) => entry)
      .sort((a, b) => b.messages - a.messages),
  };
}

/**
 * Sums senders per catalog service, per provider outside the catalog and for unattributed
 * mail. Catalog services without mail in the window are listed with zeros, so that the list
 * shows every service the catalog names.
 */
function summarizeServices(
  rows: readonly SenderTotals[],
  policies: ReadonlyMap<string, PublishedPolicy>,
  days: readonly ServiceDay[],
  catalog: ServiceCatalog,
  filter: AnalysisFilter,
): ServiceSummary[] {
  const byName = new Map(catalog.services.map((service) => [service.name, service]));
  const summaries = new Map<string, SummaryBuilder>();
  if (filter.service === null) {
    for (const service of catalog.services) {
      summaries.set(
        summaryKey(service.name, null),
        emptySummary('service', service.name, null, service),
      );
    }
  }

  for (const row of rows) {
    const service = row.service ?? '';
    const provider = service === '' ? row.provider : null;
    const key = summaryKey(service, provider);
    let summary = summaries.get(key);
    if (!summary) {
      let kind: ServiceSummary['kind'] = 'unattributed';
      if (service !== '') kind = 'service';
      else if (provider !== null) kind = 'provider';
      summary = emptySummary(kind, service, provider, byName.get(service));
      summaries.set(key, summary);
    }
    addSender(summary, row, policies);
  }

  for (const day of days) {
    summaries.get(summaryKey(day.service, day.provider))?.daily.push({
      day: day.day,
      messages: day.messages,
      pass: day.pass,
      pass_rate: rate(day.pass, day.messages),
    });
  }

  const order = { service: 0, provider: 1, unattributed: 2 };
  return [...summaries.values()]
    .map(finishSummary)
    .sort(
      (a, b) =>
        order[a.kind] - order[b.kind] ||
        a.service.localeCompare(b.service) ||
        (a.provider ?? '').localeCompare(b.provider ?? ''),
    );
}

/** The running analysis workers of `serve`. */
export interface AnalysisWorkers {
  stop(): Promise<void>;
}

/** Options of `startAnalysisWorkers`. The resolver is injectable for tests. */
export interface AnalysisWorkerOptions {
  /** REVERSE_DNS: `off`, `system` (the operating system's servers) or `host[:port]` entries. */
  reverseDns: 'off' | 'system' | string[];
  reverseDnsTimeoutMs?: number;
  resolver?: DnsResolver;
}

/**
 * Starts the attribution worker, woken after each rollup and each catalog change in this
 * process, and, unless reverse DNS is off, the enrichment worker, whose new names wake
 * attribution again. Both run at once on start, so that data loaded before start is current.
 */
export function startAnalysisWorkers(
  analysis: AnalysisService,
  rollups: Pick<RollupWorker, 'onRolledUp'>,
  options: AnalysisWorkerOptions,
): AnalysisWorkers {
  const attribution = createAttributionWorker(analysis.pool, analysis.log);
  const previousCatalogHook = analysis.onCatalogChanged;
  analysis.onCatalogChanged = (version) => {
    previousCatalogHook(version);
    attribution.wake();
  };

  let enrichment: ReturnType<typeof createEnrichmentWorker> | null = null;
  if (options.reverseDns !== 'off') {
    const timeoutMs = options.reverseDnsTimeoutMs ?? 2000;
    const resolver =
      options.resolver ??
      createSystemResolver({
        timeoutMs,
        servers: options.reverseDns === 'system' ? undefined : options.reverseDns,
      });
    const lookup = new ReverseDnsLookup({ resolver, timeoutMs, cache: null });
    enrichment = createEnrichmentWorker(analysis.pool, analysis.log, lookup);
    enrichment.onDone = () => attribution.wake();
  }

  const previousRollupHook = rollups.onRolledUp;
  rollups.onRolledUp = (reports) => {
    previousRollupHook(reports);
    attribution.wake();
    enrichment?.wake();
  };

  attribution.start();
  enrichment?.start();
  return {
    stop: async () => {
      await enrichment?.stop();
      await attribution.stop();
    },
  };
}
