/**
 * Caps that keep a hostile input from exhausting memory or time. Defaults are sized for
 * real reports: the largest aggregate reports seen from big receivers are tens of MB of XML
 * with a few hundred thousand records, and they compress by 10–30x.
 */
export interface ParseLimits {
  /** Largest raw input (file, upload or mail message) in bytes. */
  maxInputBytes: number;
  /** Largest decompressed size of one document (gzip member or zip entry) in bytes. */
  maxDecompressedBytes: number;
  /**
   * Largest decompressed/compressed ratio, checked once a document passes 1 MiB so that
   * tiny reports, which compress badly or extremely well, are never rejected for it.
   */
  maxCompressionRatio: number;
  /** Most attachments or zip entries looked at in one input. */
  maxAttachments: number;
  /** Deepest container nesting: mail in mail, zip in gzip, and so on. */
  maxContainerDepth: number;
  /** Deepest XML element nesting. Real reports need 5. */
  maxXmlDepth: number;
  /** Most `<record>` elements in one report. */
  maxRecordsPerReport: number;
  /** Longest text of a single element or attribute, in characters. */
  maxValueLength: number;
  /**
   * Most elements kept as trees: the header's elements and unknown elements, counted over the
   * whole report. Known record fields do not count. Real reports keep a few dozen.
   */
  maxKeptElements: number;
  /** Most records read before report_metadata and policy_published; they wait in memory. */
  maxRecordsBeforeHeader: number;
}

export const DEFAULT_LIMITS: ParseLimits = {
  maxInputBytes: 256 * 1024 * 1024,
  maxDecompressedBytes: 1024 * 1024 * 1024,
  maxCompressionRatio: 200,
  maxAttachments: 50,
  maxContainerDepth: 4,
  maxXmlDepth: 32,
  maxRecordsPerReport: 2_000_000,
  maxValueLength: 8192,
  maxKeptElements: 100_000,
  maxRecordsBeforeHeader: 10_000,
};

export const RATIO_CHECK_THRESHOLD_BYTES = 1024 * 1024;
