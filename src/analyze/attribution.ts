/**
 * Attribution: which catalog service, or else which known provider, sent a source's mail.
 *
 * Precedence, strongest first (a source gets the service of the strongest rule that matched):
 *
 * | rank | rule                                   | confidence | tie between services       |
 * | ---- | -------------------------------------- | ---------- | -------------------------- |
 * | 1    | `ip` range                             | high       | longest prefix wins        |
 * | 2    | `dkim` d= and selector, signature pass | high       | first in the file          |
 * | 3    | `dkim` d= only, signature pass         | medium     | first in the file          |
 * | 4    | `spf` domain, SPF pass                 | medium     | longest domain wins        |
 * | 5    | `ptr` suffix, forward-confirmed name   | medium     | longest suffix wins        |
 * | 6    | `provider`, recognised from evidence   | low        | first in the file          |
 * | 7    | `header_from` domain                   | low        | longest domain wins        |
 * | 8    | `spf` domain, envelope-from or failing | low        | longest domain wins        |
 *
 * DKIM and SPF rules count only authenticated results, because anyone can put a domain in a
 * failing signature or an envelope-from. Rank 8 is the exception: a service's own bounce domain
 * with SPF failing usually means a new IP missing from SPF, which is worth attributing, at low
 * confidence. When services tie on rank and specificity, the one that matched more kinds of
 * rules wins, then the one listed first in the catalog file. Without any service, a source
 * recognised as a known provider is attributed to that provider, and otherwise left
 * unattributed.
 */
import type { DkimAuthResult, SpfAuthResult } from '../domain/report.js';
import type { ServiceCatalog } from './catalog.js';
import { networkOf, parseIpAddress, parseIpRange, type IpAddress } from './ip-range.js';
import { domainOfAddress, normalizeDomain } from './org-domain.js';
import { findProvider, type ProviderMatch } from './providers.js';

/** The evidence about one sending source that attribution uses. */
export interface SourceEvidence {
  ip: string | null;
  /** Reverse DNS name, only when forward-confirmed; null otherwise. */
  ptr: string | null;
  headerFrom: string | null;
  envelopeFrom: string | null;
  dkim: readonly Pick<DkimAuthResult, 'domain' | 'selector' | 'result'>[];
  spf: readonly Pick<SpfAuthResult, 'domain' | 'result'>[];
}

/** The certainty of an attribution. */
export type Confidence = 'high' | 'medium' | 'low';

/** The catalog rule kinds, as written in the file. */
export type RuleKind = 'ip' | 'dkim' | 'spf' | 'ptr' | 'provider' | 'header_from';

/** The owner of a source: one catalog service, a known provider, or none (unattributed). */
export type Attribution =
  | {
      kind: 'service';
      service: string;
      /** The rule that matched, e.g. `ip 203.0.113.0/24` or `dkim d=billing.example.com s=s1`. */
      rule: string;
      ruleKind: RuleKind;
      confidence: Confidence;
    }
  | {
      kind: 'provider';
      /** Provider id from `PROVIDERS`. */
      provider: string;
      providerName: string;
      /** The evidence that matched, e.g. `provider sendgrid (dkim d=sendgrid.net)`. */
      rule: string;
      confidence: Confidence;
    }
  | { kind: 'unattributed'; rule: null; confidence: null };

/** A catalog compiled for fast attribution of many sources. */
export interface CatalogMatcher {
  readonly catalog: ServiceCatalog;
  /** Attributes one source; see the module comment for the precedence. */
  attribute(source: SourceEvidence): Attribution;
}

interface RuleHit {
  service: number;
  rank: number;
  specificity: number;
  rule: string;
  ruleKind: RuleKind;
  confidence: Confidence;
}

interface IpEntry {
  service: number;
  text: string;
}

interface IpPrefixIndex {
  prefix: number;
  networks: Map<number | bigint, IpEntry[]>;
}

interface NamedEntry {
  service: number;
  text: string;
}

interface DkimEntry {
  service: number;
  selector: string | null;
}

const UNATTRIBUTED: Attribution = { kind: 'unattributed', rule: null, confidence: null };

function isPass(result: string | null | undefined): boolean {
  return result?.trim().toLowerCase() === 'pass';
}

function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function labelCount(name: string): number {
  let count = 1;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) === 46) count++;
  return count;
}

/** Calls `visit` with the name and each parent, so a suffix map needs one probe per label. */
function forEachSuffix(name: string, visit: (suffix: string) => void): void {
  let suffix = name;
  for (;;) {
    visit(suffix);
    const dot = suffix.indexOf('.');
    if (dot < 0) return;
    suffix = suffix.slice(dot + 1);
  }
}

class CompiledCatalog implements CatalogMatcher {
  readonly catalog: ServiceCatalog;
  private readonly ipv4: IpPrefixIndex[] = [];
  private readonly ipv6: IpPrefixIndex[] = [];
  private readonly dkim = new Map<string, DkimEntry[]>();
  private readonly spf = new Map<string, NamedEntry[]>();
  private readonly ptr = new Map<string, NamedEntry[]>();
  private readonly headerFrom = new Map<string, NamedEntry[]>();
  private readonly providers = new Map<string, number[]>();

  constructor(catalog: ServiceCatalog) {
    this.catalog = catalog;
    catalog.services.forEach((service, index) => {
      const { rules } = service;
      for (const text of rules.ip) this.addRange(text, index);
      for (const rule of rules.dkim) {
        addTo(this.dkim, rule.domain, { service: index, selector: rule.selector });
      }
      for (const text of rules.spf) this.addName(this.spf, text, index);
      for (const text of rules.ptr) this.addName(this.ptr, text, index);
      for (const text of rules.headerFrom) this.addName(this.headerFrom, text, index);
      for (const id of rules.provider) addTo(this.providers, id, index);
    });

    // Longer prefixes first, so the first hit per service is its most specific range.
    this.ipv4.sort((a, b) => b.prefix - a.prefix);
    this.ipv6.sort((a, b) => b.prefix - a.prefix);
  }

  private addRange(text: string, service: number): void {
    const range = parseIpRange(text);
    const indexes = range.family === 4 ? this.ipv4 : this.ipv6;
    let entry = indexes.find((candidate) => candidate.prefix === range.prefix);
    if (!entry) {
      entry = { prefix: range.prefix, networks: new Map() };
      indexes.push(entry);
    }
    addTo(entry.networks, range.network, { service, text });
  }

  private addName(map: Map<string, NamedEntry[]>, text: string, service: number): void {
    const name = normalizeDomain(text.replace(/^\./, ''));
    if (name !== null) addTo(map, name, { service, text });
  }

  attribute(source: SourceEvidence): Attribution {
    const hits: RuleHit[] = [];

    const address = parseIpAddress(source.ip);
    if (address) this.matchIp(address, hits);
    this.matchDkim(source, hits);
    this.matchSpf(source, hits);

    const ptr = normalizeDomain(source.ptr);
    if (ptr !== null) {
      this.matchNames(this.ptr, ptr, hits, { rank: 5, ruleKind: 'ptr', confidence: 'medium' });
    }

    const provider = findProvider({
      ptr,
      dkimDomains: source.dkim.filter((s) => isPass(s.result)).map((s) => s.domain),
      spfDomains: source.spf.filter((s) => isPass(s.result)).map((s) => s.domain),
      envelopeFrom: source.envelopeFrom,
    });
    if (provider) {
      for (const service of this.providers.get(provider.provider.id) ?? []) {
        hits.push({
          service,
          rank: 6,
          specificity: 0,
          rule: `provider ${provider.provider.id}`,
          ruleKind: 'provider',
          confidence: 'low',
        });
      }
    }

    const headerFrom = normalizeDomain(source.headerFrom);
    if (headerFrom !== null) {
      this.matchNames(this.headerFrom, headerFrom, hits, {
        rank: 7,
        ruleKind: 'header_from',
        confidence: 'low',
      });
    }

    const best = pickBest(hits);
    if (best) {
      return {
        kind: 'service',
        service: this.catalog.services[best.service].name,
        rule: best.rule,
        ruleKind: best.ruleKind,
        confidence: best.confidence,
      };
    }
    return provider ? providerAttribution(provider) : UNATTRIBUTED;
  }

  private matchIp(address: IpAddress, hits: RuleHit[]): void {
    const indexes = address.family === 4 ? this.ipv4 : this.ipv6;
    for (const { prefix, networks } of indexes) {
      const entries = networks.get(networkOf(address, prefix));
      if (!entries) continue;
      for (const entry of entries) {
        hits.push({
          service: entry.service,
          rank: 1,
          specificity: prefix,
          rule: `ip ${entry.text}`,
          ruleKind: 'ip',
          confidence: 'high',
        });
      }
    }
  }

  private matchDkim(source: SourceEvidence, hits: RuleHit[]): void {
    if (this.dkim.size === 0) return;
    for (const signature of source.dkim) {
      if (!isPass(signature.result)) continue;
      const domain = normalizeDomain(signature.domain);
      const entries = domain === null ? undefined : this.dkim.get(domain);
      if (!entries) continue;

      const selector = normalizeDomain(signature.selector);
      for (const entry of entries) {
        if (entry.selector === null) {
          hits.push({
            service: entry.service,
            rank: 3,
            specificity: 0,
            rule: `dkim d=${domain}`,
            ruleKind: 'dkim',
            confidence: 'medium',
          });
        } else if (entry.selector === selector) {
          hits.push({
            service: entry.service,
            rank: 2,
            specificity: 0,
            rule: `dkim d=${domain} s=${selector}`,
            ruleKind: 'dkim',
            confidence: 'high',
          });
        }
      }
    }
  }

  private matchSpf(source: SourceEvidence, hits: RuleHit[]): void {
    if (this.spf.size === 0) return;
    for (const result of source.spf) {
      const domain = normalizeDomain(result.domain);
      if (domain === null) continue;
      if (isPass(result.result)) {
        this.matchNames(this.spf, domain, hits, { rank: 4, ruleKind: 'spf', confidence: 'medium' });
      } else {
        this.matchNames(this.spf, domain, hits, { rank: 8, ruleKind: 'spf', confidence: 'low' });
      }
    }
    const envelope = domainOfAddress(source.envelopeFrom);
    if (envelope !== null) {
      this.matchNames(this.spf, envelope, hits, { rank: 8, ruleKind: 'spf', confidence: 'low' });
    }
  }

  private matchNames(
    map: Map<string, NamedEntry[]>,
    name: string,
    hits: RuleHit[],
    kind: { rank: number; ruleKind: RuleKind; confidence: Confidence },
  ): void {
    if (map.size === 0) return;
    forEachSuffix(name, (suffix) => {
      const entries = map.get(suffix);
      if (!entries) return;
      const specificity = labelCount(suffix);
      for (const entry of entries) {
        hits.push({
          service: entry.service,
          rank: kind.rank,
          specificity,
          rule: `${kind.ruleKind} ${entry.text}`,
          ruleKind: kind.ruleKind,
          confidence: kind.confidence,
        });
      }
    });
  }
}

/** Picks the winning hit: best rank, then specificity, then rule kinds matched, then file order. */
function pickBest(hits: RuleHit[]): RuleHit | null {
  if (hits.length === 0) return null;
  if (hits.length === 1) return hits[0];

  const kindsByService = new Map<number, Set<RuleKind>>();
  for (const hit of hits) {
    let kinds = kindsByService.get(hit.service);
    if (!kinds) kindsByService.set(hit.service, (kinds = new Set()));
    kinds.add(hit.ruleKind);
  }

  let best = hits[0];
  for (const hit of hits) {
    const order =
      hit.rank - best.rank ||
      best.specificity - hit.specificity ||
      kindsByService.get(best.service)!.size - kindsByService.get(hit.service)!.size ||
      hit.service - best.service;
    if (order < 0) best = hit;
  }
  return best;
}

function providerAttribution(match: ProviderMatch): Attribution {
  const authenticated = match.evidence.filter((evidence) => evidence !== 'envelope-from');
  let confidence: Confidence = 'medium';
  if (authenticated.length === 0) confidence = 'low';
  else if (match.evidence.length >= 2) confidence = 'high';
  const details = match.evidence.map((evidence) => {
    const value = match.matched[evidence];
    return evidence === 'dkim' ? `dkim d=${value}` : `${evidence} ${value}`;
  });
  return {
    kind: 'provider',
    provider: match.provider.id,
    providerName: match.provider.name,
    rule: `provider ${match.provider.id} (${details.join(', ')})`,
    confidence,
  };
}

const compiledCatalogs = new WeakMap<ServiceCatalog, CatalogMatcher>();

/**
 * Compiles a validated catalog into a matcher that attributes a source with a few map probes.
 * @throws Error when an `ip` rule is not a valid CIDR range, which `parseCatalog` already rejects
 */
export function compileCatalog(catalog: ServiceCatalog): CatalogMatcher {
  return new CompiledCatalog(catalog);
}

/**
 * Attributes a source to exactly one catalog service, a known provider, or none, with the
 * rule that matched and a confidence. Given a plain catalog, compiles it once and reuses the
 * result for that object, so a catalog must not be changed in place after its first use.
 */
export function attributeSource(
  source: SourceEvidence,
  catalog: ServiceCatalog | CatalogMatcher,
): Attribution {
  if ('attribute' in catalog) return catalog.attribute(source);

  let matcher = compiledCatalogs.get(catalog);
  if (!matcher) {
    matcher = compileCatalog(catalog);
    compiledCatalogs.set(catalog, matcher);
  }
  return matcher.attribute(source);
}
