/** Codes for inputs that cannot be read, stable so that the API and the dashboard can filter on them. */
export type ReportErrorCode =
  | 'empty-input'
  | 'unknown-format'
  | 'input-too-large'
  | 'decompressed-too-large'
  | 'compression-ratio'
  | 'too-many-attachments'
  | 'nesting-too-deep'
  | 'bad-gzip'
  | 'bad-zip'
  | 'bad-email'
  | 'no-report'
  | 'xml-malformed'
  | 'xml-doctype'
  | 'xml-too-deep'
  | 'invalid-encoding'
  | 'unsupported-encoding'
  | 'not-aggregate-report'
  | 'missing-field'
  | 'invalid-value'
  | 'too-many-records'
  | 'too-many-elements'
  | 'header-after-records'
  | 'value-too-long';

/** Where a document sits inside an input, such as `report.eml › google.zip › report.xml`. */
export type DocumentPath = string[];

/**
 * An input, or one document inside it, that cannot be read as a DMARC aggregate report.
 * The message names the document, the report when known, and what was wrong.
 */
export class ReportError extends Error {
  readonly code: ReportErrorCode;
  readonly document: string | null;
  readonly reportId: string | null;
  readonly reporter: string | null;

  constructor(
    code: ReportErrorCode,
    message: string,
    context: {
      document?: DocumentPath | string | null;
      reportId?: string | null;
      reporter?: string | null;
      cause?: unknown;
    } = {},
  ) {
    const document = Array.isArray(context.document)
      ? context.document.join(' › ')
      : (context.document ?? null);
    super(describe(message, document, context.reportId ?? null, context.reporter ?? null), {
      cause: context.cause,
    });
    this.name = 'ReportError';
    this.code = code;
    this.document = document;
    this.reportId = context.reportId ?? null;
    this.reporter = context.reporter ?? null;
  }
}

function describe(
  message: string,
  document: string | null,
  reportId: string | null,
  reporter: string | null,
): string {
  const where: string[] = [];
  if (reportId) where.push(`report ${JSON.stringify(reportId)}`);
  if (reporter) where.push(`from ${JSON.stringify(reporter)}`);
  if (document) where.push(`in ${document}`);
  return where.length > 0 ? `${message} (${where.join(' ')})` : message;
}

export function isReportError(error: unknown): error is ReportError {
  return error instanceof ReportError;
}
