import ipaddr from 'ipaddr.js';
import { domainToASCII } from 'node:url';

import type {
  DkimAuthResult,
  PolicyOverrideReason,
  PolicyPublished,
  ReportMetadata,
  ReportRecord,
  SpfAuthResult,
} from '../domain/report.js';
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
const KNOWN_RECORD = new Set(['row', 'identifiers', 'identities', 'auth_results']);
const KNOWN_ROW = new Set(['source_ip', 'count', 'policy_evaluated']);
const KNOWN_POLICY_EVALUATED = new Set(['disposition', 'dkim', 'spf', 'reason']);
const KNOWN_IDENTIFIERS = new Set(['header_from', 'envelope_from', 'envelope_to']);
const KNOWN_AUTH_RESULTS = new Set(['dkim', 'spf']);

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
 * Normalizes an IP address: IPv6 in its compressed lower-case form, IPv4-mapped IPv6
 * addresses as plain IPv4.
 * @throws ReportError `invalid-value` when the text is not an IP address
 */
export function normalizeIp(value: string, context: NormalizeContext): string {
  const text = value.trim();
  if (!ipaddr.isValid(text)) {
    throw new ReportError('invalid-value', `Invalid source_ip ${JSON.stringify(text)}`, context);
  }
  const address = ipaddr.parse(text);
  if (address.kind() === 'ipv6') {
    const v6 = address as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
    return v6.toString();
  }
  // ipaddr.js also accepts legacy forms such as `0x7f.1`; print the dotted quad.
  return address.toString();
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
  if (Number.isNaN(date.getTime())) {
    throw new ReportError('invalid-value', `Invalid ${field} ${JSON.stringify(text)}`, context);
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

function parseCount(value: string | null, index: number, context: NormalizeContext): number {
  if (value === null) {
    throw new ReportError('missing-field', `Missing row/count in record ${index}`, context);
  }
  const count = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(count) || count > 2 ** 31 - 1) {
    throw new ReportError(
      'invalid-value',
      `Invalid row/count ${JSON.stringify(value)} in record ${index}, expected a whole number`,
      context,
    );
  }
  return count;
}

function mergeExtensions(
  target: Record<string, unknown> | null,
  prefix: string,
  extra: Record<string, unknown> | null,
): Record<string, unknown> | null {
  if (!extra) return target;
  const merged = target ?? {};
  for (const [name, value] of Object.entries(extra)) merged[`${prefix}${name}`] = value;
  return merged;
}

/**
 * Normalizes one `<record>`. `index` counts records from 1 for messages.
 * @throws ReportError when the source address or the count is unusable
 */
export function normalizeRecord(
  record: XmlElement,
  index: number,
  context: NormalizeContext,
): ReportRecord {
  const row = firstChild(record, 'row');
  const evaluated = row ? firstChild(row, 'policy_evaluated') : undefined;
  // The pre-RFC draft called <identifiers> <identities>.
  const identifiers = firstChild(record, 'identifiers', 'identities');
  const authResults = firstChild(record, 'auth_results');

  const sourceIpText = childText(row, 'source_ip');
  const sourceIp = sourceIpText === null ? null : normalizeIp(sourceIpText, context);
  const count = parseCount(childText(row, 'count'), index, context);

  const reasons: PolicyOverrideReason[] = [];
  for (const reason of evaluated ? childrenNamed(evaluated, 'reason') : []) {
    const type = normalizeKeyword(childText(reason, 'type'));
    const comment = childText(reason, 'comment');
    // An empty <reason/> carries nothing to keep.
    if (type === null && comment === null) continue;
    reasons.push({ type: type ?? '', comment });
  }

  const dkim: DkimAuthResult[] = [];
  const spf: SpfAuthResult[] = [];
  for (const result of authResults ? childrenNamed(authResults, 'dkim') : []) {
    dkim.push({
      domain: normalizeDomain(childText(result, 'domain')) ?? '',
      selector: childText(result, 'selector'),
      result: normalizeKeyword(childText(result, 'result')) ?? '',
      humanResult: childText(result, 'human_result'),
    });
  }
  for (const result of authResults ? childrenNamed(authResults, 'spf') : []) {
    spf.push({
      domain: normalizeDomain(childText(result, 'domain')) ?? '',
      scope: normalizeKeyword(childText(result, 'scope')),
      result: normalizeKeyword(childText(result, 'result')) ?? '',
      humanResult: childText(result, 'human_result'),
    });
  }

  let extensions = unknownChildren(record, KNOWN_RECORD);
  if (row) extensions = mergeExtensions(extensions, 'row/', unknownChildren(row, KNOWN_ROW));
  if (evaluated) {
    const extra = unknownChildren(evaluated, KNOWN_POLICY_EVALUATED);
    extensions = mergeExtensions(extensions, 'policy_evaluated/', extra);
  }
  if (identifiers) {
    const extra = unknownChildren(identifiers, KNOWN_IDENTIFIERS);
    extensions = mergeExtensions(extensions, 'identifiers/', extra);
  }
  if (authResults) {
    const extra = unknownChildren(authResults, KNOWN_AUTH_RESULTS);
    extensions = mergeExtensions(extensions, 'auth_results/', extra);
  }

  return {
    sourceIp,
    count,
    disposition: normalizeKeyword(childText(evaluated, 'disposition')),
    evalDkim: normalizeKeyword(childText(evaluated, 'dkim')),
    evalSpf: normalizeKeyword(childText(evaluated, 'spf')),
    reasons,
    headerFrom: normalizeDomain(childText(identifiers, 'header_from')),
    envelopeFrom: normalizeDomain(childText(identifiers, 'envelope_from')),
    envelopeTo: normalizeDomain(childText(identifiers, 'envelope_to')),
    dkim,
    spf,
    extensions,
  };
}
