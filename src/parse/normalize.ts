import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

import type { PolicyPublished, ReportMetadata } from '../domain/report.js';
import { ReportError, type DocumentPath } from './errors.js';
import {
  childText,
  childrenNamed,
  firstChild,
  unknownChildren,
  type XmlElement,
} from './xml-tree.js';

/** Where the values being normalized come from, for error messages and warnings. */
export interface NormalizeContext {
  document: DocumentPath;
  reportId: string | null;
  reporter: string | null;
  warnings: string[];
}

// Unix seconds of 5138-11-16. Larger dates are taken as milliseconds, which some reporters send.
const MAX_PLAUSIBLE_SECONDS = 1e11;
// 2100-01-01T00:00:00Z.
const LATEST_SECONDS = 4_102_444_800;

const KNOWN_METADATA = new Set([
  'org_name',
  'email',
  'extra_contact_info',
  'report_id',
  'date_range',
  'data_range',
  'error',
  'generator',
  'version',
]);
const KNOWN_POLICY = new Set([
  'domain',
  'adkim',
  'aspf',
  'p',
  'sp',
  'np',
  'pct',
  'fo',
  'testing',
  'discovery_method',
]);

/** Lower-cases a domain, drops a trailing dot and converts IDNs to their ASCII form. */
export function normalizeDomain(value: string | null): string | null {
  if (value === null) return null;
  let domain = value.trim().toLowerCase();
  while (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (domain === '') return null;
  if (/[^\x00-\x7f]/.test(domain)) {
    const ascii = domainToASCII(domain);
    if (ascii !== '') domain = ascii;
  }
  return domain;
}

/** Lower-cases an enumerated value such as `pass` or `quarantine`; reporters vary the case. */
export function normalizeKeyword(value: string | null): string | null {
  return value === null ? null : value.trim().toLowerCase();
}

/**
 * Normalizes an IP address: IPv6 in its compressed lower-case form (RFC 5952), IPv4-mapped
 * IPv6 addresses as plain IPv4. Node's URL parser does the IPv6 canonicalization.
 * @throws ReportError `invalid-value` when the text is not an IP address
 */
export function normalizeIp(value: string, context: NormalizeContext): string {
  const text = value.trim();
  if (isIPv4(text)) return text;
  if (isIPv6(text) && !text.includes('%')) {
    const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
    if (!mapped) return host;
    const high = parseInt(mapped[1], 16);
    const low = parseInt(mapped[2], 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  throw new ReportError('invalid-value', `Invalid source_ip ${JSON.stringify(text)}`, context);
}

/** Parses a Unix timestamp in seconds or milliseconds. */
export function parseTimestamp(value: string, field: string, context: NormalizeContext): Date {
  const text = value.trim();
  if (!/^-?\d+(\.\d+)?$/.test(text)) {
    throw new ReportError(
      'invalid-value',
      `Invalid ${field} ${JSON.stringify(text)}, expected Unix seconds`,
      context,
    );
  }
  let seconds = Number(text);
  if (seconds > MAX_PLAUSIBLE_SECONDS) seconds = seconds / 1000;
  const date = new Date(Math.floor(seconds) * 1000);
  // Before DMARC existed or after 2100: a broken clock or a hostile value, not a real report.
  if (Number.isNaN(date.getTime()) || seconds < 0 || seconds >= LATEST_SECONDS) {
    throw new ReportError(
      'invalid-value',
      `Invalid ${field} ${JSON.stringify(text)}: outside 1970 to 2099`,
      context,
    );
  }
  return date;
}

function requireText(
  element: XmlElement | undefined,
  name: string,
  path: string,
  context: NormalizeContext,
): string {
  const text = childText(element, name);
  if (text === null) {
    throw new ReportError('missing-field', `Missing ${path}`, context);
  }
  return text;
}

export function normalizeMetadata(
  element: XmlElement | undefined,
  context: NormalizeContext,
): ReportMetadata {
  if (!element) throw new ReportError('missing-field', 'Missing report_metadata', context);

  const orgName = childText(element, 'org_name') ?? '';
  const email = childText(element, 'email');
  context.reporter = orgName || email;
  const reportId = requireText(element, 'report_id', 'report_metadata/report_id', context);
  context.reportId = reportId;

  // KDDI sends the misspelled <data_range>; the content is the same.
  const dateRange = firstChild(element, 'date_range', 'data_range');
  if (!dateRange)
    throw new ReportError('missing-field', 'Missing report_metadata/date_range', context);
  const beginText = requireText(dateRange, 'begin', 'date_range/begin', context);
  const endText = requireText(dateRange, 'end', 'date_range/end', context);
  const dateBegin = parseTimestamp(beginText, 'date_range/begin', context);
  const dateEnd = parseTimestamp(endText, 'date_range/end', context);
  if (dateEnd < dateBegin) {
    context.warnings.push(`date_range/end ${endText} is before begin ${beginText}`);
  }

  const errors = childrenNamed(element, 'error')
    .map((error) => error.text.trim())
    .filter((text) => text !== '');

  return {
    orgName,
    email,
    extraContactInfo: childText(element, 'extra_contact_info'),
    reportId,
    dateBegin,
    dateEnd,
    errors,
    generator: childText(element, 'generator'),
  };
}

export function metadataExtensions(
  element: XmlElement | undefined,
): Record<string, unknown> | null {
  return element ? unknownChildren(element, KNOWN_METADATA) : null;
}

export function policyExtensions(element: XmlElement | undefined): Record<string, unknown> | null {
  return element ? unknownChildren(element, KNOWN_POLICY) : null;
}

function parsePercent(value: string | null, context: NormalizeContext): number | null {
  if (value === null) return null;
  const pct = Number(value);
  if (!Number.isInteger(pct) || pct < 0 || pct > 100) {
    context.warnings.push(`Ignored policy_published/pct ${JSON.stringify(value)}: not 0–100`);
    return null;
  }
  return pct;
}

export function normalizePolicy(
  element: XmlElement | undefined,
  context: NormalizeContext,
): PolicyPublished {
  if (!element) throw new ReportError('missing-field', 'Missing policy_published', context);

  const domain = normalizeDomain(childText(element, 'domain'));
  if (domain === null) {
    throw new ReportError('missing-field', 'Missing policy_published/domain', context);
  }

  return {
    domain,
    adkim: normalizeKeyword(childText(element, 'adkim')),
    aspf: normalizeKeyword(childText(element, 'aspf')),
    p: normalizeKeyword(childText(element, 'p')),
    sp: normalizeKeyword(childText(element, 'sp')),
    np: normalizeKeyword(childText(element, 'np')),
    pct: parsePercent(childText(element, 'pct'), context),
    fo: childText(element, 'fo'),
    testing: normalizeKeyword(childText(element, 'testing')),
    discoveryMethod: normalizeKeyword(childText(element, 'discovery_method')),
  };
}
