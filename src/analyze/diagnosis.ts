/**
 * Diagnosis of a record's DMARC result: the reasons in plain words with a stable code,
 * recomputed from the raw auth_results rather than taken from the reporter's verdict alone.
 */
import { isDmarcPass, type ReportRecord } from '../domain/report.js';
import type { Attribution } from './attribution.js';
import {
  domainOfAddress,
  normalizeDomain,
  organizationalDomain,
  parseAlignmentMode,
  recordAlignment,
  type RecordAlignment,
} from './org-domain.js';
import { findProvider, getProvider, type Provider } from './providers.js';

/**
 * Stable diagnosis codes. `pass` and `forwarded` need no fix, `spoofing` needs enforcement, and
 * each of the others names one mechanism (DKIM or SPF) and what is wrong with it.
 */
export type DiagnosisCode =
  | 'pass'
  | 'forwarded'
  | 'spoofing'
  | 'no-dkim'
  | 'dkim-fail'
  | 'dkim-provider-domain'
  | 'dkim-strict-mismatch'
  | 'spf-fail'
  | 'spf-provider-domain'
  | 'spf-strict-mismatch';

/** One reason for a record's DMARC result. */
export interface Diagnosis {
  code: DiagnosisCode;
  summary: string;
  /** The change that makes this mechanism align, or null when nothing needs fixing. */
  fix: string | null;
}

/** A record's recomputed alignment and the reasons for its result. */
export interface RecordDiagnosis {
  /** DMARC result: recomputed alignment, or the reporter's own evaluated `pass`. */
  dmarcPass: boolean;
  alignment: RecordAlignment;
  /** Aligned and passing under the published `adkim`. */
  dkimAligned: boolean;
  /** Aligned and passing under the published `aspf`. */
  spfAligned: boolean;
  /** The sending platform, when recognised from the record or given by attribution. */
  provider: { id: string; name: string } | null;
  /** `pass`, `forwarded` or `spoofing` alone, or one DKIM and one SPF reason. */
  diagnoses: Diagnosis[];
}

/** The policy and attribution that a diagnosis depends on. */
export interface DiagnosisContext {
  adkim?: string | null;
  aspf?: string | null;
  /**
   * Attribution of the record's source. An unattributed source that fails DMARC is
   * diagnosed as spoofing. Without an attribution, only a recognised provider counts as known.
   */
  attribution?: Attribution | null;
  /** Forward-confirmed reverse DNS name of the source, for recognising the provider. */
  ptr?: string | null;
}

/** The record fields a diagnosis reads. */
export type DiagnosedRecord = Pick<
  ReportRecord,
  'sourceIp' | 'evalDkim' | 'evalSpf' | 'reasons' | 'headerFrom' | 'envelopeFrom' | 'dkim' | 'spf'
>;

// Override reasons (RFC 7489 §6.6.2 and appendix C) under which a receiver delivered mail that
// failed DMARC because it trusted the path, as with a forwarder or mailing list, or ARC.
const FORWARDING_REASONS = new Set([
  'forwarded',
  'local_policy',
  'trusted_forwarder',
  'mailing_list',
]);

function isForwarded(record: DiagnosedRecord): boolean {
  return record.reasons.some(
    (reason) =>
      FORWARDING_REASONS.has(reason.type.trim().toLowerCase()) ||
      /\barc=pass\b/i.test(reason.comment ?? ''),
  );
}

function recogniseProvider(record: DiagnosedRecord, context: DiagnosisContext): Provider | null {
  if (context.attribution?.kind === 'provider') {
    return getProvider(context.attribution.provider) ?? null;
  }
  const match = findProvider({
    ptr: context.ptr ?? null,
    dkimDomains: record.dkim.map((signature) => signature.domain),
    spfDomains: record.spf.map((result) => result.domain),
    envelopeFrom: record.envelopeFrom,
  });
  return match?.provider ?? null;
}

function describePass(record: DiagnosedRecord, diagnosis: RecordDiagnosis): Diagnosis {
  const { dkim, spf } = diagnosis.alignment;
  let summary: string;
  if (diagnosis.dkimAligned) summary = `DMARC passes: DKIM d=${dkim.domain} is aligned`;
  else if (diagnosis.spfAligned) summary = `DMARC passes: SPF for ${spf.domain} is aligned`;
  else {
    summary =
      'DMARC passes by the reporter’s evaluation, although the raw auth_results show no ' +
      'aligned pass (the reporter may have left a result out)';
  }
  return { code: 'pass', summary, fix: null };
}

function diagnoseDkim(
  record: DiagnosedRecord,
  alignment: RecordAlignment,
  strictMode: boolean,
  provider: Provider | null,
): Diagnosis {
  const from = normalizeDomain(record.headerFrom) ?? 'the From domain';
  const via = provider ? ` via ${provider.name}` : '';

  if (record.dkim.length === 0) {
    return {
      code: 'no-dkim',
      summary: `Mail${via} carries no DKIM signature`,
      fix: provider?.fixes.dkim ?? `Sign the mail with a DKIM key published under ${from}.`,
    };
  }

  if (alignment.dkim.relaxed && strictMode) {
    return {
      code: 'dkim-strict-mismatch',
      summary: `DKIM d=${alignment.dkim.domain} passes but adkim=s needs exactly ${from}`,
      fix: `Sign with d=${from}, or publish adkim=r.`,
    };
  }

  const passing = record.dkim.find((signature) => signature.result.trim().toLowerCase() === 'pass');
  if (passing) {
    const owner = provider ? `${provider.name}’s domain` : 'a domain that is not ours';
    return {
      code: 'dkim-provider-domain',
      summary: `DKIM passes for d=${normalizeDomain(passing.domain)}, ${owner}, instead of ${from}`,
      fix:
        provider?.fixes.dkim ??
        `Make the sender sign with a DKIM key published under ${from} instead of d=${normalizeDomain(passing.domain)}.`,
    };
  }

  const failing = record.dkim[0];
  const selector = failing.selector ? ` s=${failing.selector}` : '';
  return {
    code: 'dkim-fail',
    summary: `DKIM ${failing.result.trim().toLowerCase()} for d=${normalizeDomain(failing.domain)}${selector}`,
    fix:
      `Check that the public key at ${failing.selector ?? '<selector>'}._domainkey.` +
      `${normalizeDomain(failing.domain)} matches the signing key and that nothing rewrites ` +
      'the message after signing.',
  };
}

function diagnoseSpf(
  record: DiagnosedRecord,
  alignment: RecordAlignment,
  strictMode: boolean,
  provider: Provider | null,
): Diagnosis {
  const from = normalizeDomain(record.headerFrom) ?? 'the From domain';
  const ip = record.sourceIp ?? 'the source IP';

  if (alignment.spf.relaxed && strictMode) {
    return {
      code: 'spf-strict-mismatch',
      summary: `SPF passes for ${alignment.spf.domain} but aspf=s needs exactly ${from}`,
      fix: `Use ${from} itself as envelope-from domain, or publish aspf=r.`,
    };
  }

  if (alignment.spf.domain !== null) {
    const owner = provider ? `${provider.name}’s bounce domain` : 'a domain that is not ours';
    return {
      code: 'spf-provider-domain',
      summary: `SPF passes for ${alignment.spf.domain}, ${owner}: the return path is not aligned with ${from}`,
      fix:
        provider?.fixes.returnPath ??
        `Make the sender use an envelope-from (return-path) address under ${from}.`,
    };
  }

  const result = record.spf[0];
  const domain =
    normalizeDomain(result?.domain) ??
    domainOfAddress(record.envelopeFrom) ??
    organizationalDomain(from) ??
    from;
  const outcome = result ? `SPF ${result.result.trim().toLowerCase()}` : 'No SPF result';
  return {
    code: 'spf-fail',
    summary: `${outcome} for ${domain}: ${ip} is not in its SPF record`,
    fix:
      provider?.fixes.spf ??
      `Add ${ip} (or the sender’s SPF include) to the SPF record of ${domain}.`,
  };
}

/**
 * Recomputes a record's DKIM and SPF alignment under the policy's `adkim`/`aspf` and explains
 * its DMARC result, with the provider's fix where the provider is known.
 */
export function diagnoseRecord(
  record: DiagnosedRecord,
  context: DiagnosisContext = {},
): RecordDiagnosis {
  const alignment = recordAlignment(record);
  const dkimStrict = parseAlignmentMode(context.adkim) === 's';
  const spfStrict = parseAlignmentMode(context.aspf) === 's';
  const dkimAligned = dkimStrict ? alignment.dkim.strict : alignment.dkim.relaxed;
  const spfAligned = spfStrict ? alignment.spf.strict : alignment.spf.relaxed;
  const provider = recogniseProvider(record, context);

  const diagnosis: RecordDiagnosis = {
    dmarcPass: dkimAligned || spfAligned || isDmarcPass(record),
    alignment,
    dkimAligned,
    spfAligned,
    provider: provider ? { id: provider.id, name: provider.name } : null,
    diagnoses: [],
  };

  if (diagnosis.dmarcPass) {
    diagnosis.diagnoses.push(describePass(record, diagnosis));
    return diagnosis;
  }

  if (isForwarded(record)) {
    const types = record.reasons.map((reason) => reason.type.trim().toLowerCase()).join(', ');
    diagnosis.diagnoses.push({
      code: 'forwarded',
      summary: `Fails DMARC after forwarding; the receiver delivered it anyway (${types})`,
      fix: null,
    });
    return diagnosis;
  }

  const isKnown =
    provider !== null ||
    (context.attribution != null && context.attribution.kind !== 'unattributed');
  if (!isKnown) {
    const source = record.sourceIp ? `Unknown source ${record.sourceIp}` : 'Unknown source';
    const domain = normalizeDomain(record.headerFrom) ?? 'the domain';
    diagnosis.diagnoses.push({
      code: 'spoofing',
      summary: `${source} fails DMARC for ${domain}`,
      fix:
        'If this is not one of your senders, nothing to fix: a quarantine or reject policy ' +
        'stops it. If it is, add it to the service catalog.',
    });
    return diagnosis;
  }

  diagnosis.diagnoses.push(diagnoseDkim(record, alignment, dkimStrict, provider));
  diagnosis.diagnoses.push(diagnoseSpf(record, alignment, spfStrict, provider));
  return diagnosis;
}
