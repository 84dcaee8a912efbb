/**
 * Replays stored records under a candidate DMARC policy: how many messages would pass, be
 * delivered despite failing, be quarantined or be rejected, per service and for unattributed
 * sources. Counts under `pct` are statistical expectations (count × pct / 100), so they may be
 * fractional.
 */
import type { PolicyOverrideReason } from '../domain/report.js';
import { dkimAlignment, spfAlignment } from './org-domain.js';
import {
  expectedDispositions,
  policyRequestFor,
  type DmarcPolicy,
  type DispositionCounts,
} from './policy.js';

/** One stored record, or several identical ones summed, to replay. */
export interface ReplayRow {
  /** Service name, or `''` for unattributed sources. */
  service: string;
  headerFrom: string;
  count: number;
  dkim: readonly { domain: string; result: string }[];
  spf: readonly { domain: string; result: string; scope?: string | null }[];
  evalDkim: string | null;
  evalSpf: string | null;
  reasons?: readonly Pick<PolicyOverrideReason, 'type' | 'comment'>[];
}

/** Messages of one service (or of unattributed sources) by outcome under the candidate. */
export interface WhatIfCounts extends DispositionCounts {
  /** Service name, or `''` for unattributed sources. */
  service: string;
  messages: number;
  /** Messages that pass DMARC under the candidate's alignment modes. */
  pass: number;
  /** Failing messages that receivers delivered through a forwarding or local-policy override. */
  overridden: number;
}

/** The outcome of a replay. */
export interface WhatIfResult {
  policy: DmarcPolicy;
  /** Catalog services by name. */
  services: WhatIfCounts[];
  unattributed: WhatIfCounts;
  total: WhatIfCounts;
  /** Messages whose header From is neither the policy's domain nor a subdomain; not replayed. */
  otherDomainMessages: number;
  /** Caveats to show beside the numbers. */
  notes: string[];
}

/** Options of `whatIf`. */
export interface WhatIfOptions {
  /**
   * Count failing mail with a `forwarded`, `local_policy`, `trusted_forwarder` or
   * `mailing_list` override as delivered, assuming receivers keep overriding. Default true.
   */
  honorOverrides?: boolean;
}

const OVERRIDE_REASONS = new Set([
  'forwarded',
  'local_policy',
  'trusted_forwarder',
  'mailing_list',
]);

function emptyCounts(service: string): WhatIfCounts {
  return { service, messages: 0, pass: 0, overridden: 0, none: 0, quarantine: 0, reject: 0 };
}

function isPass(result: string | null | undefined): boolean {
  return result?.trim().toLowerCase() === 'pass';
}

/**
 * Decides DMARC for a row under the candidate's modes. The raw results decide first. The
 * reporter's evaluated pass also counts when the candidate's mode for that mechanism is
 * relaxed, because a pass under any published mode implies a relaxed pass.
 */
function passesUnder(row: ReplayRow, policy: DmarcPolicy): boolean {
  const dkim = dkimAlignment(row.dkim, row.headerFrom);
  const spf = spfAlignment(
    row.spf.map((result) => ({ ...result, scope: result.scope ?? null })),
    row.headerFrom,
  );
  const dkimStrict = policy.adkim === 's';
  const spfStrict = policy.aspf === 's';
  if (dkimStrict ? dkim.strict : dkim.relaxed) return true;
  if (spfStrict ? spf.strict : spf.relaxed) return true;
  return (!dkimStrict && isPass(row.evalDkim)) || (!spfStrict && isPass(row.evalSpf));
}

function isOverridden(row: ReplayRow): boolean {
  return (row.reasons ?? []).some((reason) =>
    OVERRIDE_REASONS.has(reason.type.trim().toLowerCase()),
  );
}

function add(target: WhatIfCounts, source: Omit<WhatIfCounts, 'service'>): void {
  target.messages += source.messages;
  target.pass += source.pass;
  target.overridden += source.overridden;
  target.none += source.none;
  target.quarantine += source.quarantine;
  target.reject += source.reject;
}

/** Replays rows under a candidate policy and counts the outcome per service and in total. */
export function whatIf(
  rows: readonly ReplayRow[],
  policy: DmarcPolicy,
  options: WhatIfOptions = {},
): WhatIfResult {
  const honorOverrides = options.honorOverrides ?? true;
  const byService = new Map<string, WhatIfCounts>();
  const unattributed = emptyCounts('');
  const total = emptyCounts('*');
  let otherDomainMessages = 0;

  for (const row of rows) {
    const request = policyRequestFor(policy, row.headerFrom);
    if (request === null) {
      otherDomainMessages += row.count;
      continue;
    }

    const outcome = {
      messages: row.count,
      pass: 0,
      overridden: 0,
      none: 0,
      quarantine: 0,
      reject: 0,
    };
    if (passesUnder(row, policy)) outcome.pass = row.count;
    else if (honorOverrides && isOverridden(row)) outcome.overridden = row.count;
    else Object.assign(outcome, expectedDispositions(row.count, request, policy));

    let target = unattributed;
    if (row.service !== '') {
      target = byService.get(row.service) ?? emptyCounts(row.service);
      byService.set(row.service, target);
    }
    add(target, outcome);
    add(total, outcome);
  }

  const notes: string[] = [];
  if (policy.t === 'y') {
    notes.push(
      't=y: receivers apply the next lower policy (RFC 9990), so reject acts as quarantine.',
    );
  } else if (policy.pct !== null && policy.pct < 100) {
    notes.push(
      `pct=${policy.pct}: receivers pick messages at random, so the counts are expected values ` +
        '(count × pct / 100), and the rest gets the next lower policy.',
    );
  }
  if (policy.np !== null) {
    notes.push(
      'np applies to non-existent subdomains, which reports do not show; subdomain mail is counted under sp.',
    );
  }
  if (honorOverrides) {
    notes.push(
      'Mail that receivers delivered through a forwarding or local-policy override is assumed to be delivered again.',
    );
  }

  const services = [...byService.values()].sort((a, b) => a.service.localeCompare(b.service));
  return { policy, services, unattributed, total, otherDomainMessages, notes };
}
