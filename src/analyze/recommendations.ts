/**
 * Recommendations: from aggregated evidence per domain to the next DMARC step, with the numbers
 * behind it and the exact DNS record to publish. Pure: the store fills the input with SQL.
 */
import type { PolicyPublished } from '../domain/report.js';
import type { DiagnosisCode } from './diagnosis.js';
import {
  comparePolicyRequests,
  expectedDispositions,
  formatDmarcRecord,
  nextPolicyRequest,
  parsePolicyRequest,
  policyRequestFor,
  type DmarcPolicy,
} from './policy.js';
import { getProvider } from './providers.js';

/** Kinds of recommendation, stable for the API and the CLI. */
export type RecommendationKind =
  | 'step-up-policy'
  | 'set-subdomain-policy'
  | 'strict-alignment'
  | 'fix-service'
  | 'add-to-catalog'
  | 'spoofing'
  | 'wait-for-data';

/** `critical`: the team's own mail is being lost now; `warning`: act soon; `info`: a next step. */
export type Severity = 'critical' | 'warning' | 'info';

/** One recommendation, in the shape of `recommend --format json`. */
export interface Recommendation {
  domain: string;
  /** Service name, or `''` for domain-wide and unattributed items. */
  service: string;
  kind: RecommendationKind;
  severity: Severity;
  summary: string;
  /** The numbers behind the recommendation; rates are percentages. */
  evidence: Record<string, number>;
  /** The TXT record to publish, or `''` when the change is not a DNS record of this domain. */
  dns_record: string;
}

/** Aggregated evidence for one (service or unattributed, header From) pair of a domain. */
export interface SourceStats {
  /** Service name, or `''` for unattributed sources. */
  service: string;
  headerFrom: string;
  /** Provider id the mail went through, when known; selects the fix text. */
  provider: string | null;
  messages: number;
  /** Messages whose evaluated DKIM or SPF is `pass`. */
  dmarcPass: number;
  dkimAligned: number;
  spfAligned: number;
  /** Messages with DKIM or SPF passing and aligned in strict mode. */
  strictAligned: number;
  reporters: number;
  daysSeen: number;
  firstSeen: Date;
  lastSeen: Date;
  /** Messages per diagnosis code, for naming the main cause of failures. */
  failures?: Partial<Record<DiagnosisCode, number>>;
}

/** Everything recommendations need about one domain over the chosen window. */
export interface DomainEvidence {
  domain: string;
  /** The latest published policy, as reported in `<policy_published>`. */
  policy: Pick<PolicyPublished, 'p' | 'sp' | 'np' | 'pct' | 'testing' | 'adkim' | 'aspf' | 'fo'>;
  /** Distinct reporters over the window. */
  reporters: number;
  firstSeen: Date;
  lastSeen: Date;
  rows: SourceStats[];
}

/** Thresholds of `recommend`; see `DEFAULT_THRESHOLDS` for the defaults and their reasons. */
export interface RecommendationThresholds {
  minPassRate: number;
  minDaysObserved: number;
  minReporters: number;
  pctRamp: number[];
  addToCatalogMinMessages: number;
  spoofingMinMessages: number;
}

/**
 * Default thresholds.
 *
 * - `minPassRate` 0.98: a known service counts as passing when at least 98% of its messages pass
 *   DMARC. The 2% leaves room for forwarded mail and mailing lists, which break SPF and often
 *   DKIM for any sender. Below that, a stricter policy would lose real mail of the service.
 * - `minDaysObserved` 14: two weeks of reports, so weekly jobs (newsletters, weekly digests)
 *   have sent at least twice before the policy changes.
 * - `minReporters` 2: one mailbox provider reports only on mail to its own users, so a
 *   second reporter makes it less likely that a sender reaching only some recipients is missed.
 * - `pctRamp` 10, 25, 50, 100: for domains that publish `pct`, each step at most doubles the
 *   share of failing mail that receivers act on.
 * - `addToCatalogMinMessages` 10: an unattributed sender needs this many passing messages before
 *   it is worth a catalog entry, which keeps single stray messages out of the list.
 * - `spoofingMinMessages` 10: failing unattributed mail below this count is noise, such as
 *   forwarding that reporters did not mark.
 */
export const DEFAULT_THRESHOLDS: Readonly<RecommendationThresholds> = Object.freeze({
  minPassRate: 0.98,
  minDaysObserved: 14,
  minReporters: 2,
  pctRamp: [10, 25, 50, 100],
  addToCatalogMinMessages: 10,
  spoofingMinMessages: 10,
});

// Aggregate reports carry only the evaluated tags, never rua, ruf or ri, so every DNS record
// written here lacks them and the summary reminds the reader to keep them.
const KEEP_TAGS_NOTE = 'Keep your rua/ruf tags from the current record: reports do not show them.';

const DAY_MS = 86_400_000;

const CAUSES: Record<string, string> = {
  'dkim-provider-domain': 'DKIM signed with the provider’s domain instead of ours',
  'no-dkim': 'no DKIM signature',
  'dkim-fail': 'DKIM signature does not verify',
  'dkim-strict-mismatch': 'DKIM domain is not an exact match under adkim=s',
  'spf-provider-domain': 'SPF passes only for the provider’s bounce domain',
  'spf-fail': 'sending IP is not in the SPF record',
  'spf-strict-mismatch': 'envelope-from is not an exact match under aspf=s',
};

interface ServiceTotals {
  service: string;
  provider: string | null;
  messages: number;
  dmarcPass: number;
  dkimAligned: number;
  spfAligned: number;
  strictAligned: number;
  failures: Partial<Record<DiagnosisCode, number>>;
  headerFrom: Set<string>;
}

function toPolicy(domain: string, reported: DomainEvidence['policy']): DmarcPolicy {
  const mode = (value: string | null) => {
    const text = value?.trim().toLowerCase();
    return text === 'r' || text === 's' ? text : null;
  };
  const testing = reported.testing?.trim().toLowerCase();
  return {
    domain,
    p: parsePolicyRequest(reported.p) ?? 'none',
    sp: parsePolicyRequest(reported.sp),
    np: parsePolicyRequest(reported.np),
    pct: reported.pct,
    t: testing === 'y' || testing === 'n' ? testing : null,
    adkim: mode(reported.adkim),
    aspf: mode(reported.aspf),
    fo: reported.fo,
  };
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10;
}

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function totalsByService(rows: SourceStats[]): ServiceTotals[] {
  const byService = new Map<string, ServiceTotals>();
  for (const row of rows) {
    if (row.service === '') continue;
    let totals = byService.get(row.service);
    if (!totals) {
      totals = {
        service: row.service,
        provider: null,
        messages: 0,
        dmarcPass: 0,
        dkimAligned: 0,
        spfAligned: 0,
        strictAligned: 0,
        failures: {},
        headerFrom: new Set(),
      };
      byService.set(row.service, totals);
    }
    totals.provider ??= row.provider;
    totals.messages += row.messages;
    totals.dmarcPass += row.dmarcPass;
    totals.dkimAligned += row.dkimAligned;
    totals.spfAligned += row.spfAligned;
    totals.strictAligned += row.strictAligned;
    totals.headerFrom.add(row.headerFrom);
    for (const [code, messages] of Object.entries(row.failures ?? {})) {
      const key = code as DiagnosisCode;
      totals.failures[key] = (totals.failures[key] ?? 0) + (messages ?? 0);
    }
  }
  return [...byService.values()].sort((a, b) => a.service.localeCompare(b.service));
}

/**
 * Returns the next step of a policy: along the `pct` ramp for domains that publish `pct`,
 * through `t=y` first for domains that publish `t` (RFC 9990), else straight to the next `p`.
 * Returns null at `p=reject` in full force.
 */
export function nextPolicyStep(
  policy: DmarcPolicy,
  pctRamp: readonly number[],
): DmarcPolicy | null {
  if (policy.t !== null) {
    if (policy.t === 'y' && policy.p !== 'none') return { ...policy, t: 'n' };
    const next = nextPolicyRequest(policy.p);
    return next === null ? null : { ...policy, p: next, t: 'y' };
  }

  if (policy.pct !== null) {
    const ramp = [...pctRamp].sort((a, b) => a - b);
    if (policy.p !== 'none' && policy.pct < 100) {
      const pct = ramp.find((value) => value > (policy.pct as number)) ?? 100;
      return { ...policy, pct };
    }
    const next = nextPolicyRequest(policy.p);
    return next === null ? null : { ...policy, p: next, pct: ramp[0] ?? 100 };
  }

  const next = nextPolicyRequest(policy.p);
  return next === null ? null : { ...policy, p: next };
}

/** Counts the failing mail a policy would quarantine or reject, split by known and unattributed. */
function blockedUnder(policy: DmarcPolicy, rows: SourceStats[]) {
  const blocked = { quarantine: 0, reject: 0, known: 0, unattributed: 0 };
  for (const row of rows) {
    const request = policyRequestFor(policy, row.headerFrom);
    if (request === null) continue;
    const failing = row.messages - row.dmarcPass;
    const outcome = expectedDispositions(failing, request, policy);
    blocked.quarantine += outcome.quarantine;
    blocked.reject += outcome.reject;
    const total = outcome.quarantine + outcome.reject;
    if (row.service === '') blocked.unattributed += total;
    else blocked.known += total;
  }
  return blocked;
}

function describeStep(current: DmarcPolicy, next: DmarcPolicy): string {
  if (next.t !== current.t && next.t === 'n') {
    return `publish t=n to enforce p=${next.p} (it is in RFC 9990 testing mode now)`;
  }
  if (next.t === 'y') {
    const applied = next.p === 'reject' ? 'quarantine' : 'none';
    return `publish p=${next.p} with t=y first: RFC 9990 receivers then apply ${applied} while you watch the reports`;
  }
  if (next.p === current.p && next.pct !== current.pct) {
    return `raise pct from ${current.pct} to ${next.pct} at p=${next.p}`;
  }
  const pct =
    next.pct !== null && next.pct < 100 ? ` at pct=${next.pct}, then raise pct step by step` : '';
  return `move from p=${current.p} to p=${next.p}${pct}`;
}

function fixFor(totals: ServiceTotals, cause: DiagnosisCode | null, domain: string): string {
  const provider = totals.provider ? getProvider(totals.provider) : undefined;
  if (provider && cause !== 'dkim-strict-mismatch' && cause !== 'spf-strict-mismatch') {
    if (cause === 'spf-provider-domain') return provider.fixes.returnPath;
    if (cause === 'spf-fail') return provider.fixes.spf;
    return provider.fixes.dkim;
  }
  switch (cause) {
    case 'spf-fail':
      return 'Add the service’s sending IPs (or its provider’s include) to the SPF record of its envelope-from domain.';
    case 'spf-provider-domain':
      return `Make the service use an envelope-from (return-path) address under ${domain}.`;
    case 'dkim-strict-mismatch':
    case 'spf-strict-mismatch':
      return 'Sign and send with exactly the header From domain, or publish relaxed alignment.';
    case 'dkim-fail':
      return 'Check that the service’s DKIM key in DNS matches its signing key.';
    default:
      return `Make the service sign with a DKIM key published under ${domain}.`;
  }
}

function mainCause(totals: ServiceTotals): [DiagnosisCode, number] | null {
  let best: [DiagnosisCode, number] | null = null;
  for (const [code, messages] of Object.entries(totals.failures)) {
    if (!(code in CAUSES) || !messages) continue;
    if (best === null || messages > best[1]) best = [code as DiagnosisCode, messages];
  }
  return best;
}

function isEnforced(policy: DmarcPolicy, headerFrom: string): boolean {
  const request = policyRequestFor(policy, headerFrom);
  if (request === null || request === 'none') return false;
  return !(policy.t === 'y' && request === 'quarantine');
}

function recommendDomain(
  evidence: DomainEvidence,
  limits: RecommendationThresholds,
): Recommendation[] {
  const { domain, rows } = evidence;
  const policy = toPolicy(domain, evidence.policy);
  const items: Recommendation[] = [];
  const item = (
    kind: RecommendationKind,
    severity: Severity,
    service: string,
    summary: string,
    numbers: Record<string, number>,
    record: DmarcPolicy | null = null,
  ) => {
    items.push({
      domain,
      service,
      kind,
      severity,
      summary,
      evidence: numbers,
      dns_record: record ? formatDmarcRecord(record) : '',
    });
  };

  const days = Math.max(
    0,
    Math.round((evidence.lastSeen.getTime() - evidence.firstSeen.getTime()) / DAY_MS),
  );
  const hasCoverage = days >= limits.minDaysObserved && evidence.reporters >= limits.minReporters;
  const coverage = { days_observed: days, reporters: evidence.reporters };

  // Known services: fix the failing ones first.
  const services = totalsByService(rows);
  const failing = services.filter(
    (s) => s.messages > 0 && s.dmarcPass / s.messages < limits.minPassRate,
  );
  for (const totals of failing) {
    const cause = mainCause(totals);
    const causeText = cause
      ? ` Main cause: ${CAUSES[cause[0]]} (${count(cause[1])} messages).`
      : '';
    const enforced = [...totals.headerFrom].some((from) => isEnforced(policy, from));
    const numbers: Record<string, number> = {
      messages: totals.messages,
      dmarc_pass: totals.dmarcPass,
      pass_rate: percent(totals.dmarcPass, totals.messages),
      dkim_aligned: totals.dkimAligned,
      spf_aligned: totals.spfAligned,
    };
    for (const [code, messages] of Object.entries(totals.failures))
      numbers[`failures_${code}`] = messages ?? 0;
    const consequence = enforced
      ? `p=${policy.p} already quarantines or rejects its failing mail.`
      : 'Fix it before a stricter policy.';
    item(
      'fix-service',
      enforced ? 'critical' : 'warning',
      totals.service,
      `${totals.service} passes DMARC for ${numbers.pass_rate}% of ${count(totals.messages)} messages ` +
        `(needs ${limits.minPassRate * 100}%). ${consequence}${causeText} Fix: ${fixFor(totals, cause?.[0] ?? null, domain)}`,
      numbers,
    );
  }

  const knownMessages = services.reduce((sum, s) => sum + s.messages, 0);
  const isReady = hasCoverage && failing.length === 0 && knownMessages > 0;

  // Step up the policy once every known service passes.
  const next = nextPolicyStep(policy, limits.pctRamp);
  if (next && failing.length === 0 && knownMessages > 0) {
    if (!hasCoverage) {
      item(
        'wait-for-data',
        'info',
        '',
        `Every known service of ${domain} passes, but the reports cover ${days} days from ` +
          `${evidence.reporters} reporters; wait for ${limits.minDaysObserved} days from ` +
          `${limits.minReporters} reporters before the next step.`,
        coverage,
      );
    } else {
      const now = blockedUnder(policy, rows);
      const then = blockedUnder(next, rows);
      const minRate = Math.min(...services.map((s) => percent(s.dmarcPass, s.messages)));
      item(
        'step-up-policy',
        policy.p === 'none' ? 'warning' : 'info',
        '',
        `${domain} is ready for the next step: ${describeStep(policy, next)}. All ${services.length} ` +
          `known services pass DMARC (lowest ${minRate}%) over ${days} days from ${evidence.reporters} ` +
          `reporters. Over that window it would have quarantined ${count(then.quarantine)} and rejected ` +
          `${count(then.reject)} messages, ${count(then.unattributed)} of them from unattributed sources. ` +
          KEEP_TAGS_NOTE,
        {
          ...coverage,
          known_services: services.length,
          known_messages: knownMessages,
          lowest_pass_rate: minRate,
          would_quarantine: then.quarantine,
          would_reject: then.reject,
          would_block_known: then.known,
          would_block_unattributed: then.unattributed,
          now_quarantine: now.quarantine,
          now_reject: now.reject,
        },
        next,
      );
    }
  }

  // Subdomains that send nothing can take the strictest policy at no cost.
  const subdomainMessages = rows
    .filter((row) => row.headerFrom.toLowerCase() !== domain)
    .reduce((sum, row) => sum + row.messages, 0);
  const effectiveSp = policy.sp ?? policy.p;
  const effectiveNp = policy.np ?? effectiveSp;
  if (
    hasCoverage &&
    subdomainMessages === 0 &&
    (effectiveSp !== 'reject' || effectiveNp !== 'reject')
  ) {
    item(
      'set-subdomain-policy',
      comparePolicyRequests(effectiveSp, 'none') === 0 ? 'warning' : 'info',
      '',
      `No mail From subdomains of ${domain} in ${days} days from ${evidence.reporters} reporters: ` +
        `publish sp=reject and np=reject (RFC 9990, for non-existent subdomains) so that nobody ` +
        `can send in their name. ${KEEP_TAGS_NOTE}`,
      { ...coverage, subdomain_messages: 0 },
      { ...policy, sp: 'reject', np: 'reject' },
    );
  }

  // Strict alignment, once every known service already aligns strictly.
  if (isReady && (policy.adkim !== 's' || policy.aspf !== 's')) {
    const rates = services.map((s) => percent(s.strictAligned, s.messages));
    const lowest = Math.min(...rates);
    if (lowest >= limits.minPassRate * 100) {
      item(
        'strict-alignment',
        'info',
        '',
        `Every known service of ${domain} already aligns in strict mode (lowest ${lowest}%): ` +
          `publish adkim=s and aspf=s so that other subdomains cannot pass for ${domain}. ${KEEP_TAGS_NOTE}`,
        { ...coverage, known_services: services.length, lowest_strict_rate: lowest },
        { ...policy, adkim: 's', aspf: 's' },
      );
    }
  }

  recommendUnattributed(evidence, policy, limits, item);
  return items;
}

type AddItem = (
  kind: RecommendationKind,
  severity: Severity,
  service: string,
  summary: string,
  numbers: Record<string, number>,
) => void;

function recommendUnattributed(
  evidence: DomainEvidence,
  policy: DmarcPolicy,
  limits: RecommendationThresholds,
  item: AddItem,
): void {
  const unattributed = evidence.rows.filter((row) => row.service === '');

  // Unknown senders that pass DMARC hold a key or an SPF entry of ours: someone set them up.
  for (const row of unattributed) {
    if (row.dmarcPass < limits.addToCatalogMinMessages) continue;
    const provider = row.provider ? getProvider(row.provider) : undefined;
    const via = provider ? ` via ${provider.name}` : '';
    const rule = provider
      ? `header_from: ${row.headerFrom}, provider: ${provider.id}`
      : `header_from: ${row.headerFrom}`;
    item(
      'add-to-catalog',
      'info',
      '',
      `Unattributed mail From ${row.headerFrom}${via} passes DMARC (${count(row.dmarcPass)} of ` +
        `${count(row.messages)} messages, ${row.reporters} reporters): a legitimate sender that no ` +
        `catalog service claims. Add it to the catalog, for example with rules ${rule}.`,
      {
        messages: row.messages,
        dmarc_pass: row.dmarcPass,
        reporters: row.reporters,
        days_seen: row.daysSeen,
      },
    );
  }

  // Unknown senders that fail DMARC: spoofing, or senders that were never set up. Mail that
  // receivers delivered through a forwarding override is neither.
  const failingOf = (row: SourceStats) =>
    Math.max(0, row.messages - row.dmarcPass - (row.failures?.forwarded ?? 0));
  const failing = unattributed.reduce((sum, row) => sum + failingOf(row), 0);
  if (failing < limits.spoofingMinMessages) return;

  let delivered = 0;
  for (const row of unattributed) {
    const request = policyRequestFor(policy, row.headerFrom);
    if (request !== null) delivered += expectedDispositions(failingOf(row), request, policy).none;
  }
  const fromDomains = new Set(
    unattributed.filter((row) => failingOf(row) > 0).map((row) => row.headerFrom),
  );
  const consequence =
    delivered >= 1
      ? `Under p=${policy.p} receivers deliver an expected ${count(delivered)} of them; a stricter policy stops them.`
      : `The current policy already quarantines or rejects them.`;
  item(
    'spoofing',
    delivered >= limits.spoofingMinMessages ? 'warning' : 'info',
    '',
    `${count(failing)} messages From ${[...fromDomains].sort().join(', ')} fail DMARC and come from ` +
      `unattributed sources: spoofing, or a sender missing from the catalog. ${consequence}`,
    {
      failing_messages: failing,
      delivered_messages: delivered,
      header_from_domains: fromDomains.size,
    },
  );
}

const SEVERITY_ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/**
 * Turns aggregated evidence into recommendations per domain and service, sorted by domain,
 * then severity. Thresholds not given take `DEFAULT_THRESHOLDS`.
 */
export function recommend(
  domains: readonly DomainEvidence[],
  thresholds: Partial<RecommendationThresholds> = {},
): Recommendation[] {
  const limits: RecommendationThresholds = { ...DEFAULT_THRESHOLDS, ...thresholds };
  const items = domains.flatMap((evidence) =>
    recommendDomain({ ...evidence, domain: evidence.domain.trim().toLowerCase() }, limits),
  );
  return items.sort(
    (a, b) =>
      a.domain.localeCompare(b.domain) || SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity],
  );
}
