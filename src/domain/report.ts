/**
 * A DMARC aggregate report after normalization. Names follow the report XML
 * of RFC 7489 appendix C and RFC 9990, so that a field here and the element in
 * a report read the same.
 */

/** The reporter's `<report_metadata>`. */
export interface ReportMetadata {
  orgName: string;
  email: string | null;
  extraContactInfo: string | null;
  reportId: string;
  dateBegin: Date;
  dateEnd: Date;
  errors: string[];
  /** RFC 9990 `<generator>`: the software that wrote the report. */
  generator: string | null;
}

/** The DMARC record the receiver found, `<policy_published>`. */
export interface PolicyPublished {
  domain: string;
  adkim: string | null;
  aspf: string | null;
  p: string | null;
  sp: string | null;
  /** RFC 9990 policy for non-existent subdomains. */
  np: string | null;
  pct: number | null;
  fo: string | null;
  /** RFC 9990 `t=` testing flag, `y` or `n`. */
  testing: string | null;
  /** RFC 9990: how the receiver found the record, `psl` or `treewalk`. */
  discoveryMethod: string | null;
}

/** Everything before the first `<record>`: what identifies a report. */
export interface ReportHeader {
  /** `<version>`: absent in the pre-RFC draft, `1.0` in RFC 7489, `2.0` in RFC 9990. */
  version: string | null;
  /** The root element's namespace, which tells the schema apart where `<version>` is missing. */
  namespace: string | null;
  metadata: ReportMetadata;
  policy: PolicyPublished;
  /** Elements this reader does not know, kept as they came (name → text or nested object). */
  extensions: Record<string, unknown> | null;
  /** Values that were out of range and replaced or dropped, for the person reading the report. */
  warnings: string[];
}

export interface PolicyOverrideReason {
  type: string;
  comment: string | null;
}

export interface DkimAuthResult {
  domain: string;
  selector: string | null;
  result: string;
  humanResult: string | null;
}

export interface SpfAuthResult {
  domain: string;
  /** `mfrom` or `helo`; RFC 9990 dropped the element, so it is often missing. */
  scope: string | null;
  result: string;
  humanResult: string | null;
}

/** One `<record>`: a sending source and what the receiver decided for its mail. */
export interface ReportRecord {
  /** Normalized address text; null when the reporter left `<source_ip>` empty. */
  sourceIp: string | null;
  count: number;
  disposition: string | null;
  /** The receiver's DMARC-evaluated DKIM result: `pass` means aligned and passing. */
  evalDkim: string | null;
  evalSpf: string | null;
  reasons: PolicyOverrideReason[];
  headerFrom: string | null;
  envelopeFrom: string | null;
  envelopeTo: string | null;
  dkim: DkimAuthResult[];
  spf: SpfAuthResult[];
  extensions: Record<string, unknown> | null;
}

export interface AggregateReport extends ReportHeader {
  records: ReportRecord[];
}

/** DMARC passes when the evaluated DKIM or SPF result is `pass` (RFC 7489 §6.6.2). */
export function isDmarcPass(record: Pick<ReportRecord, 'evalDkim' | 'evalSpf'>): boolean {
  return record.evalDkim === 'pass' || record.evalSpf === 'pass';
}
