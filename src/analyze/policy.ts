/**
 * DMARC policy records: reading and writing the TXT record, stepping a policy up, and the
 * disposition a receiver applies to failing mail under `pct` (RFC 7489) or `t` (RFC 9990).
 */

/** A DMARC policy request, the value of `p`, `sp` and `np`. */
export type PolicyRequest = 'none' | 'quarantine' | 'reject';

/** The tags of a DMARC record that dmarc-lens reads and writes. */
export interface DmarcPolicy {
  domain: string;
  p: PolicyRequest;
  sp: PolicyRequest | null;
  /** RFC 9990 policy for non-existent subdomains. */
  np: PolicyRequest | null;
  /** RFC 7489 percentage of failing mail the policy applies to; RFC 9990 dropped it. */
  pct: number | null;
  /** RFC 9990 testing flag: with `y`, receivers apply the next lower policy. */
  t: 'y' | 'n' | null;
  adkim: 'r' | 's' | null;
  aspf: 'r' | 's' | null;
  fo: string | null;
}

/** Expected message counts per disposition; fractional where `pct` splits a count. */
export interface DispositionCounts {
  none: number;
  quarantine: number;
  reject: number;
}

const POLICY_ORDER: PolicyRequest[] = ['none', 'quarantine', 'reject'];

/** Reads a `p`/`sp`/`np` value as reported; null for a missing or unknown value. */
export function parsePolicyRequest(value: string | null | undefined): PolicyRequest | null {
  const text = value?.trim().toLowerCase();
  return text === 'none' || text === 'quarantine' || text === 'reject' ? text : null;
}

/** Returns the next stricter policy request, or null after `reject`. */
export function nextPolicyRequest(request: PolicyRequest): PolicyRequest | null {
  return POLICY_ORDER[POLICY_ORDER.indexOf(request) + 1] ?? null;
}

function lowerPolicyRequest(request: PolicyRequest): PolicyRequest {
  return POLICY_ORDER[Math.max(0, POLICY_ORDER.indexOf(request) - 1)];
}

/** Compares two policy requests by strictness: negative when `a` is weaker. */
export function comparePolicyRequests(a: PolicyRequest, b: PolicyRequest): number {
  return POLICY_ORDER.indexOf(a) - POLICY_ORDER.indexOf(b);
}

/**
 * Parses a DMARC TXT record such as `v=DMARC1; p=quarantine; pct=25`. Tags that dmarc-lens
 * does not evaluate (rua, ruf, ri, rf, psd) are accepted and ignored.
 * @throws Error naming the tag and value that are missing or invalid
 */
export function parseDmarcRecord(text: string, domain: string): DmarcPolicy {
  const tags = new Map<string, string>();
  for (const part of text.split(';')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const equals = trimmed.indexOf('=');
    if (equals < 0) throw new Error(`Invalid DMARC record tag "${trimmed}": expected name=value`);
    tags.set(trimmed.slice(0, equals).trim().toLowerCase(), trimmed.slice(equals + 1).trim());
  }

  if (tags.get('v')?.toUpperCase() !== 'DMARC1') {
    throw new Error(`Invalid DMARC record "${text}": it must start with v=DMARC1`);
  }
  const readRequest = (tag: string, required: boolean): PolicyRequest | null => {
    const value = tags.get(tag);
    if (value === undefined && !required) return null;
    const request = parsePolicyRequest(value);
    if (request === null) {
      throw new Error(
        `Invalid DMARC record: ${tag}=${value ?? ''} is ${value === undefined ? 'missing' : 'invalid'}; expected none, quarantine or reject`,
      );
    }
    return request;
  };
  const readMode = (tag: string): 'r' | 's' | null => {
    const value = tags.get(tag)?.toLowerCase();
    if (value === undefined) return null;
    if (value !== 'r' && value !== 's')
      throw new Error(`Invalid DMARC record: ${tag}=${value}; expected r or s`);
    return value;
  };

  const pctText = tags.get('pct');
  const pct = pctText === undefined ? null : Number(pctText);
  if (pct !== null && !(Number.isInteger(pct) && pct >= 0 && pct <= 100)) {
    throw new Error(`Invalid DMARC record: pct=${pctText}; expected a whole number from 0 to 100`);
  }
  const tText = tags.get('t')?.toLowerCase();
  if (tText !== undefined && tText !== 'y' && tText !== 'n') {
    throw new Error(`Invalid DMARC record: t=${tText}; expected y or n`);
  }

  return {
    domain: domain.trim().toLowerCase().replace(/\.$/, ''),
    p: readRequest('p', true) as PolicyRequest,
    sp: readRequest('sp', false),
    np: readRequest('np', false),
    pct,
    t: (tText as 'y' | 'n' | undefined) ?? null,
    adkim: readMode('adkim'),
    aspf: readMode('aspf'),
    fo: tags.get('fo') ?? null,
  };
}

/**
 * Writes the policy as the DNS record to publish, e.g.
 * `_dmarc.example.com. TXT "v=DMARC1; p=quarantine; sp=reject"`. Only tags seen in reports are
 * known here, so rua, ruf and other tags of the live record are missing and must be kept by hand.
 */
export function formatDmarcRecord(policy: DmarcPolicy): string {
  const tags = [`v=DMARC1`, `p=${policy.p}`];
  if (policy.sp !== null) tags.push(`sp=${policy.sp}`);
  if (policy.np !== null) tags.push(`np=${policy.np}`);
  if (policy.pct !== null) tags.push(`pct=${policy.pct}`);
  if (policy.t !== null) tags.push(`t=${policy.t}`);
  if (policy.adkim !== null) tags.push(`adkim=${policy.adkim}`);
  if (policy.aspf !== null) tags.push(`aspf=${policy.aspf}`);
  if (policy.fo !== null) tags.push(`fo=${policy.fo}`);
  return `_dmarc.${policy.domain}. TXT "${tags.join('; ')}"`;
}

/**
 * Returns the policy request that applies to mail with this header From domain: `p` for the
 * domain itself, `sp` (else `p`) for its subdomains, and null for other domains.
 * NOTE: `np` applies to non-existent subdomains, which aggregate reports cannot tell apart, so
 * subdomain mail is always evaluated under `sp`.
 */
export function policyRequestFor(policy: DmarcPolicy, headerFrom: string): PolicyRequest | null {
  const from = headerFrom.trim().toLowerCase().replace(/\.$/, '');
  if (from === policy.domain) return policy.p;
  if (from.endsWith(`.${policy.domain}`)) return policy.sp ?? policy.p;
  return null;
}

/**
 * Splits `count` failing messages into expected dispositions under a request. With `t=y`
 * (RFC 9990) receivers apply the next lower request. With `pct` (RFC 7489 §6.6.4) the request
 * applies to pct% of the messages and the next lower one to the rest, so the split is a
 * statistical expectation, not a count of real messages.
 */
export function expectedDispositions(
  count: number,
  request: PolicyRequest,
  policy: Pick<DmarcPolicy, 'pct' | 't'>,
): DispositionCounts {
  const counts: DispositionCounts = { none: 0, quarantine: 0, reject: 0 };
  if (policy.t === 'y') {
    counts[lowerPolicyRequest(request)] += count;
    return counts;
  }

  const share = (policy.pct ?? 100) / 100;
  counts[request] += count * share;
  counts[lowerPolicyRequest(request)] += count * (1 - share);
  return counts;
}
