/**
 * Queries behind attribution, diagnoses, recommendations and the what-if replay. Every query
 * reads the daily totals per sender (daily_sender_stats) joined with senders, never records,
 * so that its cost follows the number of senders and days, not of messages. Reports about
 * domains outside DOMAINS (`is_foreign`) are always left out. Days are UTC days.
 */
import type pg from 'pg';

import type { Attribution, RuleKind } from '../analyze/attribution.js';
import type { DkimAuthResult, PolicyPublished, SpfAuthResult } from '../domain/report.js';
import { diagnoseRecord, type Diagnosis, type DiagnosisCode } from '../analyze/diagnosis.js';
import { recordAlignment } from '../analyze/org-domain.js';
import { getProvider } from '../analyze/providers.js';
import type { DomainEvidence, SourceStats } from '../analyze/recommendations.js';
import type { ReplayRow } from '../analyze/what-if.js';
import { streamRows } from './cursor.js';

/** The filters of every analysis query. Days are UTC, and `to` is inclusive. */
export interface AnalysisFilter {
  from: string | null;
  to: string | null;
  /** A report domain; its subdomains match too. */
  domain: string | null;
  /** A catalog service name. */
  service: string | null;
  reporter: string | null;
}

/** Published policy tags as the latest report of a domain shows them. */
export type PublishedPolicy = DomainEvidence['policy'];

/** A sender's totals over the window, per report domain, with its attribution. */
export interface SenderTotals {
  domain: string;
  senderKey: string;
  sourceIp: string | null;
  headerFrom: string | null;
  envelopeFrom: string | null;
  dkim: DkimAuthResult[];
  spf: SpfAuthResult[];
  service: string | null;
  provider: string | null;
  rule: string | null;
  confidence: string | null;
  /** False until the attribution worker has seen the sender. */
  attributed: boolean;
  /** Forward-confirmed reverse DNS name, when looked up. */
  ptr: string | null;
  messages: number;
  pass: number;
  dkimPass: number;
  spfPass: number;
  quarantined: number;
  rejected: number;
  /** Failing messages that receivers delivered through a forwarding override. */
  forwarded: number;
  reporters: string[];
  /** Days seen, as days since 1970-01-01. */
  days: number[];
}

// $1 from, $2 to, $3 domain, $4 reporter, $5 service. A null parameter switches its condition
// off. `right()` replaces LIKE so that `%` or `_` in a domain match only themselves.
const WINDOW_FILTER = `
  NOT d.is_foreign
  AND ($1::date IS NULL OR d.day >= $1::date)
  AND ($2::date IS NULL OR d.day <= $2::date)
  AND ($3::text IS NULL OR d.domain = $3 OR right(d.domain, length($3) + 1) = '.' || $3)
  AND ($4::text IS NULL OR d.reporter_org = $4)
  AND ($5::text IS NULL OR lower(s.service) = lower($5))`;

function filterParams(filter: AnalysisFilter): unknown[] {
  return [filter.from, filter.to, filter.domain, filter.reporter, filter.service];
}

const SENDER_TOTALS = `
  SELECT d.domain, s.sender_key, host(s.source_ip) AS source_ip, s.header_from,
         s.envelope_from, s.dkim, s.spf, s.service, s.provider, s.attribution_rule,
         s.attribution_confidence, s.attributed_version IS NOT NULL AS attributed, h.ptr,
         sum(d.messages) AS messages, sum(d.pass_messages) AS pass,
         sum(d.dkim_pass_messages) AS dkim_pass, sum(d.spf_pass_messages) AS spf_pass,
         sum(d.quarantined_messages) AS quarantined, sum(d.rejected_messages) AS rejected,
         sum(d.forwarded_messages) AS forwarded,
         array_agg(DISTINCT d.reporter_org) AS reporters,
         array_agg(DISTINCT d.day - DATE '1970-01-01') AS days
    FROM daily_sender_stats d
    JOIN senders s ON s.sender_key = d.sender_key
    LEFT JOIN source_hosts h ON h.ip = s.source_ip AND h.state = 'ok'
   WHERE ${WINDOW_FILTER}
   GROUP BY d.domain, s.sender_key, h.ip
   ORDER BY d.domain, s.sender_key`;

// The latest report of each domain shows the policy published now.
const PUBLISHED_POLICIES = `
  SELECT DISTINCT ON (domain) domain, policy_p, policy_sp, policy_np, policy_pct,
         policy_testing, policy_adkim, policy_aspf, policy_fo
    FROM reports
   WHERE NOT is_foreign
     AND ($1::text IS NULL OR domain = $1 OR right(domain, length($1) + 1) = '.' || $1)
   ORDER BY domain, date_begin DESC, id DESC`;

const LAST_DAY = `
  SELECT to_char(max(day), 'YYYY-MM-DD') AS day
    FROM daily_domain_stats
   WHERE NOT is_foreign
     AND ($1::text IS NULL OR domain = $1 OR right(domain, length($1) + 1) = '.' || $1)`;

const SERVICE_DAILY = `
  SELECT coalesce(s.service, '') AS service,
         CASE WHEN s.service IS NULL THEN s.provider END AS provider,
         to_char(d.day, 'YYYY-MM-DD') AS day,
         sum(d.messages) AS messages, sum(d.pass_messages) AS pass
    FROM daily_sender_stats d
    JOIN senders s ON s.sender_key = d.sender_key
   WHERE ${WINDOW_FILTER}
   GROUP BY 1, 2, 3
   ORDER BY 3, 1, 2`;

/** Finds each sender's totals over the window, one row per report domain and sender. */
export async function findSenderTotals(
  pool: pg.Pool,
  filter: AnalysisFilter,
): Promise<SenderTotals[]> {
  const { rows } = await pool.query(SENDER_TOTALS, filterParams(filter));
  return rows.map((row) => ({
    domain: row.domain,
    senderKey: row.sender_key,
    sourceIp: row.source_ip,
    headerFrom: row.header_from,
    envelopeFrom: row.envelope_from,
    dkim: row.dkim ?? [],
    spf: row.spf ?? [],
    service: row.service,
    provider: row.provider,
    rule: row.attribution_rule,
    confidence: row.attribution_confidence,
    attributed: row.attributed,
    ptr: row.ptr,
    messages: row.messages,
    pass: row.pass,
    dkimPass: row.dkim_pass,
    spfPass: row.spf_pass,
    quarantined: row.quarantined,
    rejected: row.rejected,
    forwarded: row.forwarded,
    reporters: row.reporters,
    days: row.days,
  }));
}

/** Finds the policy that the latest report of each owned domain shows. */
export async function findPublishedPolicies(
  pool: pg.Pool,
  domain: string | null,
): Promise<Map<string, PublishedPolicy>> {
  const { rows } = await pool.query(PUBLISHED_POLICIES, [domain]);
  return new Map(
    rows.map((row) => [
      row.domain,
      {
        p: row.policy_p,
        sp: row.policy_sp,
        np: row.policy_np,
        pct: row.policy_pct,
        testing: row.policy_testing,
        adkim: row.policy_adkim,
        aspf: row.policy_aspf,
        fo: row.policy_fo,
      } satisfies Pick<PolicyPublished, keyof PublishedPolicy>,
    ]),
  );
}

/** Returns the last UTC day with owned data, as YYYY-MM-DD, or null when there is none. */
export async function findLastDay(pool: pg.Pool, domain: string | null): Promise<string | null> {
  const { rows } = await pool.query<{ day: string | null }>(LAST_DAY, [domain]);
  return rows[0]?.day ?? null;
}

/** Messages and DMARC passes per day of a service, or of a provider for mail without one. */
export interface ServiceDay {
  /** Service name, or `''` for mail no service claims. */
  service: string;
  /** The provider of mail no service claims, or null for service mail and unattributed mail. */
  provider: string | null;
  day: string;
  messages: number;
  pass: number;
}

export async function findServiceDays(
  pool: pg.Pool,
  filter: AnalysisFilter,
): Promise<ServiceDay[]> {
  const { rows } = await pool.query<ServiceDay>(SERVICE_DAILY, filterParams(filter));
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Diagnoses

function attributionOf(row: SenderTotals): Attribution | null {
  if (!row.attributed) return null;
  if (row.service !== null) {
    return {
      kind: 'service',
      service: row.service,
      rule: row.rule ?? '',
      ruleKind: (row.rule ?? 'ip').split(' ')[0] as RuleKind,
      confidence: (row.confidence ?? 'low') as 'high' | 'medium' | 'low',
    };
  }
  if (row.provider !== null) {
    return {
      kind: 'provider',
      provider: row.provider,
      providerName: getProvider(row.provider)?.name ?? row.provider,
      rule: row.rule ?? '',
      confidence: (row.confidence ?? 'low') as 'high' | 'medium' | 'low',
    };
  }
  return { kind: 'unattributed', rule: null, confidence: null };
}

/**
 * Explains why a sender's failing messages fail, under the domain's published alignment modes.
 * Returns no diagnosis when the sender has no failing messages, or when its raw results pass
 * although the reporters reported a failure. A sender whose failing messages were all
 * delivered through a forwarding override is diagnosed as forwarded.
 */
export function diagnoseSender(
  row: SenderTotals,
  policy: PublishedPolicy | undefined,
): Diagnosis[] {
  if (row.messages - row.pass <= 0) return [];
  const result = diagnoseRecord(
    {
      sourceIp: row.sourceIp,
      evalDkim: 'fail',
      evalSpf: 'fail',
      reasons:
        row.forwarded >= row.messages - row.pass ? [{ type: 'forwarded', comment: null }] : [],
      headerFrom: row.headerFrom ?? row.domain,
      envelopeFrom: row.envelopeFrom,
      dkim: row.dkim,
      spf: row.spf,
    },
    { adkim: policy?.adkim, aspf: policy?.aspf, attribution: attributionOf(row), ptr: row.ptr },
  );
  return result.diagnoses.filter((diagnosis) => diagnosis.code !== 'pass');
}

/** Messages that fail per diagnosis, per report domain and service (`''` for none). */
export interface DiagnosisTotals {
  domain: string;
  service: string;
  provider: string | null;
  code: DiagnosisCode;
  /** The summary and fix of the sender with the most failing messages for this diagnosis. */
  summary: string;
  fix: string | null;
  messages: number;
  senders: number;
  sources: number;
  exampleSourceIp: string | null;
}

/** Adds up the diagnoses of failing senders per domain, service and diagnosis code. */
export function summarizeDiagnoses(
  rows: readonly SenderTotals[],
  policies: ReadonlyMap<string, PublishedPolicy>,
): DiagnosisTotals[] {
  const totals = new Map<string, DiagnosisTotals & { largest: number; ips: Set<string> }>();
  for (const row of rows) {
    const failing = row.messages - row.pass;
    for (const diagnosis of diagnoseSender(row, policies.get(row.domain))) {
      const service = row.service ?? '';
      const key = `${row.domain}\u0000${service}\u0000${diagnosis.code}`;
      let entry = totals.get(key);
      if (!entry) {
        entry = {
          domain: row.domain,
          service,
          provider: row.provider,
          code: diagnosis.code,
          summary: diagnosis.summary,
          fix: diagnosis.fix,
          messages: 0,
          senders: 0,
          sources: 0,
          exampleSourceIp: row.sourceIp,
          largest: failing,
          ips: new Set(),
        };
        totals.set(key, entry);
      } else if (failing > entry.largest) {
        Object.assign(entry, {
          summary: diagnosis.summary,
          fix: diagnosis.fix,
          exampleSourceIp: row.sourceIp,
          largest: failing,
        });
      }
      entry.provider ??= row.provider;
      entry.messages += failing;
      entry.senders += 1;
      if (row.sourceIp !== null) entry.ips.add(row.sourceIp);
    }
  }
  return [...totals.values()]
    .map(({ largest: _largest, ips, ...entry }) => ({ ...entry, sources: ips.size }))
    .sort(
      (a, b) =>
        b.messages - a.messages ||
        a.domain.localeCompare(b.domain) ||
        a.service.localeCompare(b.service) ||
        a.code.localeCompare(b.code),
    );
}

// ---------------------------------------------------------------------------------------------
// Recommendation evidence and what-if rows

const DAY_MS = 86_400_000;

function dayToDate(day: number): Date {
  return new Date(day * DAY_MS);
}

interface StatsGroup extends SourceStats {
  reporterSet: Set<string>;
  daySet: Set<number>;
  failures: Partial<Record<DiagnosisCode, number>>;
}

/**
 * Returns the key that groups senders into the rows of `recommend()`. Service mail groups by service
 * and header From. Mail no service claims also splits by provider and by whether it mostly
 * passes, so that a legitimate unknown sender is not summed with spoofing of the same domain.
 */
function statsKey(row: SenderTotals, headerFrom: string): string {
  if (row.service !== null) return `s\u0000${row.service}\u0000${headerFrom}`;
  const passing = row.pass * 2 >= row.messages;
  return `u\u0000${headerFrom}\u0000${row.provider ?? ''}\u0000${passing}`;
}

/**
 * Builds the evidence of `recommend()` per report domain: the published policy, reporters and
 * days, and the totals per service and header From, with the failures per diagnosis.
 */
export function buildDomainEvidence(
  rows: readonly SenderTotals[],
  policies: ReadonlyMap<string, PublishedPolicy>,
): DomainEvidence[] {
  const domains = new Map<
    string,
    { reporters: Set<string>; days: Set<number>; groups: Map<string, StatsGroup> }
  >();
  for (const row of rows) {
    let domain = domains.get(row.domain);
    if (!domain) {
      domain = { reporters: new Set(), days: new Set(), groups: new Map() };
      domains.set(row.domain, domain);
    }
    for (const reporter of row.reporters) domain.reporters.add(reporter);
    for (const day of row.days) domain.days.add(day);

    const headerFrom = (row.headerFrom ?? row.domain).toLowerCase();
    const key = statsKey(row, headerFrom);
    let group = domain.groups.get(key);
    if (!group) {
      group = {
        service: row.service ?? '',
        headerFrom,
        provider: null,
        messages: 0,
        dmarcPass: 0,
        dkimAligned: 0,
        spfAligned: 0,
        strictAligned: 0,
        reporters: 0,
        daysSeen: 0,
        firstSeen: new Date(0),
        lastSeen: new Date(0),
        failures: {},
        reporterSet: new Set(),
        daySet: new Set(),
      };
      domain.groups.set(key, group);
    }
    group.provider ??= row.provider;
    group.messages += row.messages;
    group.dmarcPass += row.pass;
    group.dkimAligned += row.dkimPass;
    group.spfAligned += row.spfPass;
    const alignment = recordAlignment({ headerFrom, dkim: row.dkim, spf: row.spf });
    if (alignment.dkim.strict || alignment.spf.strict) group.strictAligned += row.pass;
    for (const reporter of row.reporters) group.reporterSet.add(reporter);
    for (const day of row.days) group.daySet.add(day);
    // Forwarded messages are counted apart, so that they never read as spoofing.
    const forwarded = Math.min(row.forwarded, row.messages - row.pass);
    if (forwarded > 0) group.failures.forwarded = (group.failures.forwarded ?? 0) + forwarded;
    for (const diagnosis of diagnoseSender(row, policies.get(row.domain))) {
      if (diagnosis.code === 'forwarded') continue;
      group.failures[diagnosis.code] =
        (group.failures[diagnosis.code] ?? 0) + row.messages - row.pass - forwarded;
    }
  }

  const evidence: DomainEvidence[] = [];
  for (const [name, domain] of domains) {
    const policy = policies.get(name);
    if (!policy || domain.days.size === 0) continue;
    const days = [...domain.days];
    const statsRows: SourceStats[] = [...domain.groups.values()].map(
      ({ reporterSet, daySet, ...group }) => {
        const seen = [...daySet];
        return {
          ...group,
          reporters: reporterSet.size,
          daysSeen: daySet.size,
          firstSeen: dayToDate(Math.min(...seen)),
          lastSeen: dayToDate(Math.max(...seen)),
        };
      },
    );
    evidence.push({
      domain: name,
      policy,
      reporters: domain.reporters.size,
      firstSeen: dayToDate(Math.min(...days)),
      lastSeen: dayToDate(Math.max(...days)),
      rows: statsRows,
    });
  }
  return evidence;
}

/**
 * Builds the rows of `whatIf()`. The totals per sender keep how many messages passed DKIM and
 * SPF as the reporter evaluated them, and DMARC passes when either does, so the four
 * combinations follow exactly: both = dkim + spf - pass, DKIM only = pass - spf, SPF only =
 * pass - dkim, neither = messages - pass.
 * Failing messages that receivers delivered through a forwarding override replay with a
 * `forwarded` reason, so that `whatIf()` can count them as delivered.
 */
export function buildReplayRows(rows: readonly SenderTotals[]): ReplayRow[] {
  const replay: ReplayRow[] = [];
  for (const row of rows) {
    const base = {
      service: row.service ?? '',
      headerFrom: (row.headerFrom ?? row.domain).toLowerCase(),
      dkim: row.dkim.map((result) => ({ domain: result.domain, result: result.result })),
      spf: row.spf.map((result) => ({
        domain: result.domain,
        result: result.result,
        scope: result.scope,
      })),
    };
    const both = Math.max(0, row.dkimPass + row.spfPass - row.pass);
    const failing = Math.max(0, row.messages - row.pass);
    const forwarded = Math.min(row.forwarded, failing);
    const groups: [number, string, string][] = [
      [both, 'pass', 'pass'],
      [Math.max(0, row.dkimPass - both), 'pass', 'fail'],
      [Math.max(0, row.spfPass - both), 'fail', 'pass'],
      [failing - forwarded, 'fail', 'fail'],
    ];
    for (const [count, evalDkim, evalSpf] of groups) {
      if (count > 0) replay.push({ ...base, count, evalDkim, evalSpf });
    }
    if (forwarded > 0) {
      const reasons = [{ type: 'forwarded', comment: null }];
      replay.push({ ...base, count: forwarded, evalDkim: 'fail', evalSpf: 'fail', reasons });
    }
  }
  return replay;
}

// ---------------------------------------------------------------------------------------------
// Sources

/** A source address with its enrichment, attribution and totals over the window. */
export interface AttributedSource {
  source_ip: string | null;
  source_name: string | null;
  /** Reverse DNS state, or null when the address was never looked up. */
  rdns_state: string | null;
  rdns_names: string[];
  service: string | null;
  provider: string | null;
  rule: string | null;
  confidence: string | null;
  header_from: string[];
  messages: number;
  dmarc_pass: number;
  dmarc_fail: number;
  pass_rate: number | null;
  reporters: number;
  first_seen: string;
  last_seen: string;
}

/** Sort keys of the attributed sources. `attention` puts unattributed and failing first. */
export const ATTRIBUTED_SOURCE_SORTS: Record<string, string> = {
  attention: '(service IS NULL), dmarc_fail',
  messages: 'messages',
  dmarc_fail: 'dmarc_fail',
  pass_rate: 'pass_rate',
  last_seen: 'last_seen',
  source_ip: 'source_ip_inet',
};

const ATTRIBUTED_SOURCES = `
  SELECT host(s.source_ip) AS source_ip, s.source_ip AS source_ip_inet, h.ptr AS source_name,
         h.state AS rdns_state, coalesce(h.names, '{}') AS rdns_names, s.service, s.provider,
         s.attribution_rule AS rule, s.attribution_confidence AS confidence,
         array_agg(DISTINCT s.header_from) FILTER (WHERE s.header_from IS NOT NULL) AS header_from,
         sum(d.messages) AS messages, sum(d.pass_messages) AS dmarc_pass,
         sum(d.messages - d.pass_messages) AS dmarc_fail,
         sum(d.pass_messages)::float8 / nullif(sum(d.messages), 0) AS pass_rate,
         count(DISTINCT d.reporter_org)::int AS reporters,
         to_char(min(d.day), 'YYYY-MM-DD') AS first_seen,
         to_char(max(d.day), 'YYYY-MM-DD') AS last_seen,
         count(*) OVER ()::int AS total
    FROM daily_sender_stats d
    JOIN senders s ON s.sender_key = d.sender_key
    LEFT JOIN source_hosts h ON h.ip = s.source_ip
   WHERE ${WINDOW_FILTER}
   GROUP BY s.source_ip, h.ip, s.service, s.provider, s.attribution_rule, s.attribution_confidence`;

function sourcesOrder(sort: string, order: 'asc' | 'desc'): string {
  const direction = order === 'asc' ? 'ASC' : 'DESC';
  if (sort === 'attention') {
    // Unattributed first, then by failing messages. `order` flips only the failing count.
    return `ORDER BY (service IS NULL) DESC, dmarc_fail ${direction}, messages DESC, source_ip_inet`;
  }
  const expression = ATTRIBUTED_SOURCE_SORTS[sort];
  if (!expression) throw new Error(`Unknown sort key ${JSON.stringify(sort)}`);
  return `ORDER BY ${expression} ${direction} NULLS LAST, source_ip_inet, service NULLS FIRST`;
}

function shapeSource(row: Record<string, unknown>): AttributedSource {
  const { source_ip_inet: _inet, total: _total, ...rest } = row;
  return {
    ...(rest as unknown as AttributedSource),
    header_from: (row.header_from as string[]) ?? [],
  };
}

/** Finds one page of source addresses per attribution, unattributed and failing first by default. */
export async function findAttributedSources(
  pool: pg.Pool,
  filter: AnalysisFilter,
  page: { sort: string; order: 'asc' | 'desc'; page: number; pageSize: number },
): Promise<{ rows: AttributedSource[]; total: number }> {
  const sql = `${ATTRIBUTED_SOURCES} ${sourcesOrder(page.sort, page.order)} LIMIT $6 OFFSET $7`;
  const { rows } = await pool.query(sql, [
    ...filterParams(filter),
    page.pageSize,
    (page.page - 1) * page.pageSize,
  ]);
  return { rows: rows.map(shapeSource), total: rows[0]?.total ?? 0 };
}

/** Streams every source address of the window in batches, for the CSV twin. */
export async function* streamAttributedSources(
  pool: pg.Pool,
  filter: AnalysisFilter,
  sort: { sort: string; order: 'asc' | 'desc' },
): AsyncGenerator<AttributedSource[]> {
  const sql = `${ATTRIBUTED_SOURCES} ${sourcesOrder(sort.sort, sort.order)}`;
  for await (const rows of streamRows<Record<string, unknown>>(pool, sql, filterParams(filter))) {
    yield rows.map(shapeSource);
  }
}
