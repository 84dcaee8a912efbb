/**
 * Organizational domains and DMARC identifier alignment (RFC 7489 §3.1 and §3.2).
 *
 * The organizational domain comes from the ICANN section of the public suffix list only
 * (tldts `allowPrivateDomains: false`). The team's own domains sit under ICANN suffixes, and
 * the private section lists hosting platforms (github.io, herokuapp.com, ...) whose tenants
 * are not what a domain owner aligns against. RFC 9990 replaced the list with a DNS tree walk,
 * which does not know those private entries either. The cost: two tenants of one platform,
 * such as a.herokuapp.com and b.herokuapp.com, count here as one organization.
 */
import { getDomain } from 'tldts';

import type { DkimAuthResult, SpfAuthResult } from '../domain/report.js';

/** DMARC alignment mode: `r` relaxed (same organizational domain) or `s` strict (same name). */
export type AlignmentMode = 'r' | 's';

/** The degree to which an authenticated domain matches the header From domain. */
export type AlignmentLevel = 'strict' | 'relaxed' | 'none';

/** Alignment of one mechanism under both modes, counting passing results only. */
export interface MechanismAlignment {
  relaxed: boolean;
  strict: boolean;
  /** The passing, best-aligned authenticated domain, or null when none passed. */
  domain: string | null;
}

/** DKIM and SPF alignment of one record, recomputed from its raw auth_results. */
export interface RecordAlignment {
  dkim: MechanismAlignment;
  spf: MechanismAlignment;
}

// Reports repeat the same few hundred domains, so a bounded memo saves most PSL lookups.
const ORG_DOMAIN_CACHE_LIMIT = 50_000;
const orgDomainCache = new Map<string, string | null>();

/** Lowercases a domain and strips surrounding whitespace and a trailing root dot; null when empty. */
export function normalizeDomain(domain: string | null | undefined): string | null {
  if (domain == null) return null;
  let name = domain.trim().toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name === '' ? null : name;
}

/** Returns the domain part of an address such as `bounces+12@em.example.com`, or the input when it has no `@`. */
export function domainOfAddress(address: string | null | undefined): string | null {
  const text = normalizeDomain(address);
  if (text === null) return null;
  const at = text.lastIndexOf('@');
  return normalizeDomain(at >= 0 ? text.slice(at + 1) : text);
}

/**
 * Returns the organizational domain (public suffix plus one label) of a domain, or null when
 * the name is itself a public suffix, an IP address or not a hostname.
 */
export function organizationalDomain(domain: string | null | undefined): string | null {
  const name = normalizeDomain(domain);
  if (name === null) return null;

  const cached = orgDomainCache.get(name);
  if (cached !== undefined) return cached;

  const orgDomain = getDomain(name, { allowPrivateDomains: false }) ?? null;
  if (orgDomainCache.size >= ORG_DOMAIN_CACHE_LIMIT) orgDomainCache.clear();
  orgDomainCache.set(name, orgDomain);
  return orgDomain;
}

/**
 * Compares an authenticated domain (DKIM `d=` or the SPF domain) with the header From domain:
 * `strict` when equal, `relaxed` when they share an organizational domain, `none` otherwise.
 */
export function alignmentLevel(
  authDomain: string | null | undefined,
  headerFrom: string | null | undefined,
): AlignmentLevel {
  const auth = normalizeDomain(authDomain);
  const from = normalizeDomain(headerFrom);
  if (auth === null || from === null) return 'none';
  if (auth === from) return 'strict';

  const authOrg = organizationalDomain(auth);
  return authOrg !== null && authOrg === organizationalDomain(from) ? 'relaxed' : 'none';
}

/** Tells whether an authenticated domain aligns with the header From domain under a mode. */
export function isAligned(
  authDomain: string | null | undefined,
  headerFrom: string | null | undefined,
  mode: AlignmentMode,
): boolean {
  const level = alignmentLevel(authDomain, headerFrom);
  return mode === 's' ? level === 'strict' : level !== 'none';
}

/** Reads an `adkim`/`aspf` value from a report; anything but `s` means relaxed, the default. */
export function parseAlignmentMode(value: string | null | undefined): AlignmentMode {
  return value?.trim().toLowerCase() === 's' ? 's' : 'r';
}

function isPass(result: string | null | undefined): boolean {
  return result?.trim().toLowerCase() === 'pass';
}

function bestAlignment(domains: string[], headerFrom: string | null): MechanismAlignment {
  let relaxed: string | null = null;
  for (const domain of domains) {
    const level = alignmentLevel(domain, headerFrom);
    if (level === 'strict') return { relaxed: true, strict: true, domain: normalizeDomain(domain) };
    if (level === 'relaxed' && relaxed === null) relaxed = normalizeDomain(domain);
  }
  if (relaxed !== null) return { relaxed: true, strict: false, domain: relaxed };
  return { relaxed: false, strict: false, domain: normalizeDomain(domains[0]) };
}

/** Computes DKIM alignment from raw results: a signature counts only when it passed. */
export function dkimAlignment(
  dkim: readonly Pick<DkimAuthResult, 'domain' | 'result'>[],
  headerFrom: string | null | undefined,
): MechanismAlignment {
  const passing = dkim.filter((signature) => isPass(signature.result)).map((s) => s.domain);
  return bestAlignment(passing, normalizeDomain(headerFrom));
}

/**
 * Computes SPF alignment from raw results. A result counts only when it passed. A `helo` result
 * counts only when the record has no `mfrom` result: RFC 7489 §4.1 uses the MAIL FROM identity,
 * and RFC 7208 §2.4 puts the HELO domain in its place only when MAIL FROM is empty.
 */
export function spfAlignment(
  spf: readonly Pick<SpfAuthResult, 'domain' | 'result' | 'scope'>[],
  headerFrom: string | null | undefined,
): MechanismAlignment {
  const hasMailFrom = spf.some((result) => result.scope?.toLowerCase() !== 'helo');
  const passing = spf
    .filter((result) => isPass(result.result))
    .filter((result) => !hasMailFrom || result.scope?.toLowerCase() !== 'helo')
    .map((result) => result.domain);
  return bestAlignment(passing, normalizeDomain(headerFrom));
}

/** Recomputes DKIM and SPF alignment of a record from its raw auth_results, in both modes. */
export function recordAlignment(record: {
  headerFrom: string | null;
  dkim: readonly Pick<DkimAuthResult, 'domain' | 'result'>[];
  spf: readonly Pick<SpfAuthResult, 'domain' | 'result' | 'scope'>[];
}): RecordAlignment {
  return {
    dkim: dkimAlignment(record.dkim, record.headerFrom),
    spf: spfAlignment(record.spf, record.headerFrom),
  };
}
