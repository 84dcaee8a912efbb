import { SaxesParser } from 'saxes';

import type { AggregateReport, ReportHeader, ReportRecord } from '../domain/report.js';
import { ReportError, type DocumentPath } from './errors.js';
import type { ParseLimits } from './limits.js';
import {
  metadataExtensions,
  normalizeMetadata,
  normalizePolicy,
  policyExtensions,
  type NormalizeContext,
} from './normalize.js';
import { RecordReader } from './record-reader.js';
import { elementToJson, localName, type XmlElement } from './xml-tree.js';

/** Events of the streaming reader: the header once, then records in batches. */
export type ReportEvent =
  { kind: 'header'; header: ReportHeader } | { kind: 'records'; records: ReportRecord[] };

const RECORD_BATCH_SIZE = 2000;
const KNOWN_TOP_LEVEL = new Set(['version', 'report_metadata', 'policy_published', 'record']);

/**
 * Reads one aggregate report from XML text chunks without holding the document: only the
 * header and one `<record>` at a time are kept as trees, and records leave in batches.
 * Namespaces are ignored, so the draft, RFC 7489 and RFC 9990 schemas read the same.
 * @throws ReportError for malformed XML, a DOCTYPE, exceeded limits or missing fields
 */
export async function* readAggregateReport(
  chunks: AsyncIterable<string>,
  document: DocumentPath,
  limits: ParseLimits,
  warnings: string[] = [],
): AsyncGenerator<ReportEvent> {
  const reader = new ReportReader(document, limits, warnings);
  let first = true;
  for await (let chunk of chunks) {
    // Some reporters put whitespace before the XML declaration, which XML forbids.
    if (first) {
      chunk = chunk.replace(/^[\s\ufeff]+/, '');
      if (chunk === '') continue;
      first = false;
    }
    reader.write(chunk);
    yield* reader.drain();
    // Parsing a chunk is synchronous, so yielding to the event loop between chunks lets the HTTP
    // server and health checks respond while a large report is read.
    await new Promise((resolve) => setImmediate(resolve));
  }
  reader.close();
  yield* reader.drain();
}

/** Reads a whole report into memory; for tests and small inputs. */
export async function collectReport(events: AsyncIterable<ReportEvent>): Promise<AggregateReport> {
  let header: ReportHeader | null = null;
  const records: ReportRecord[] = [];
  for await (const event of events) {
    if (event.kind === 'header') header = event.header;
    else records.push(...event.records);
  }
  if (!header) throw new Error('Report reader ended without a header');
  return { ...header, records };
}

class ReportReader {
  private readonly parser = new SaxesParser({ position: true });
  private readonly stack: XmlElement[] = [];
  private readonly topLevel: XmlElement[] = [];
  private readonly context: NormalizeContext;
  private readonly pending: ReportEvent[] = [];
  private header: ReportHeader | null = null;
  private batch: ReportRecord[] = [];
  private recordCount = 0;
  private namespace: string | null = null;
  private rootSeen = false;
  private closed = false;
  private readonly recordReader: RecordReader;
  /** Depth of the open elements: 1 inside <feedback>, 2 inside one of its children. */
  private depth = 0;
  private inRecord = false;
  private hasMetadata = false;
  private hasPolicy = false;
  /** Elements kept as trees so far, against `maxKeptElements`. */
  private keptElements = 0;

  constructor(
    private readonly document: DocumentPath,
    private readonly limits: ParseLimits,
    warnings: string[],
  ) {
    this.context = { document, reportId: null, reporter: null, warnings };
    this.recordReader = new RecordReader(limits.maxValueLength, this.context, () =>
      this.countKeptElement(),
    );
    this.parser.on('doctype', () => {
      throw new ReportError(
        'xml-doctype',
        'XML with a DOCTYPE is rejected: entity declarations are never expanded',
        this.context,
      );
    });
    this.parser.on('opentag', (tag) =>
      this.openElement(tag.name, tag.attributes as Record<string, string>),
    );
    this.parser.on('closetag', () => this.closeElement());
    this.parser.on('text', (text) => this.addText(text));
    this.parser.on('cdata', (text) => this.addText(text));
  }

  write(chunk: string): void {
    try {
      this.parser.write(chunk);
    } catch (error) {
      throw this.asReportError(error);
    }
  }

  close(): void {
    try {
      this.parser.close();
    } catch (error) {
      throw this.asReportError(error);
    }
    if (!this.rootSeen) {
      throw new ReportError('xml-malformed', 'No XML element found', this.context);
    }
    if (!this.closed) {
      throw new ReportError('xml-malformed', 'XML ended before </feedback>', this.context);
    }
  }

  *drain(): Generator<ReportEvent> {
    while (this.pending.length > 0) yield this.pending.shift()!;
  }

  private asReportError(error: unknown): ReportError {
    if (error instanceof ReportError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new ReportError('xml-malformed', `Malformed XML: ${message}`, {
      ...this.context,
      cause: error,
    });
  }

  private openElement(qualifiedName: string, attributes: Record<string, string>): void {
    const name = localName(qualifiedName);
    const depth = this.depth;
    if (depth >= this.limits.maxXmlDepth) {
      throw new ReportError(
        'xml-too-deep',
        `XML nesting deeper than ${this.limits.maxXmlDepth} elements (MAX_XML_DEPTH)`,
        this.context,
      );
    }
    this.depth += 1;

    if (this.inRecord) {
      this.recordReader.open(name, attributesOrNull(attributes, this));
      return;
    }
    if (depth === 0) {
      this.openRoot(qualifiedName, name, attributes);
      return;
    }
    if (depth === 1 && name === 'record') {
      this.startRecord();
      this.inRecord = true;
      this.recordReader.start();
      return;
    }

    this.countKeptElement();
    const element: XmlElement = {
      name,
      attributes: attributesOrNull(attributes, this),
      text: '',
      children: [],
    };
    this.stack.push(element);
  }

  countKeptElement(): void {
    this.keptElements += 1;
    if (this.keptElements > this.limits.maxKeptElements) {
      throw new ReportError(
        'too-many-elements',
        `More than ${this.limits.maxKeptElements} header or unknown elements in one report`,
        this.context,
      );
    }
  }

  private openRoot(qualifiedName: string, name: string, attributes: Record<string, string>): void {
    if (this.rootSeen) return;
    this.rootSeen = true;
    if (name !== 'feedback') {
      throw new ReportError(
        'not-aggregate-report',
        `Root element is <${qualifiedName}>, expected <feedback>`,
        this.context,
      );
    }
    this.namespace = attributes['xmlns'] ?? namespaceOfPrefix(qualifiedName, attributes);
  }

  checkValueLength(value: string, what: string): void {
    if (value.length > this.limits.maxValueLength) {
      throw new ReportError(
        'value-too-long',
        `${what} longer than ${this.limits.maxValueLength} characters (MAX_VALUE_LENGTH)`,
        this.context,
      );
    }
  }

  private addText(text: string): void {
    if (this.inRecord) {
      this.recordReader.addText(text);
      return;
    }
    // Text outside the root, or directly inside <feedback>, is only whitespace in real reports.
    const element = this.stack[this.stack.length - 1];
    if (!element) return;
    element.text += text;
    this.checkValueLength(element.text, `Text of <${element.name}>`);
  }

  private closeElement(): void {
    this.depth -= 1;
    if (this.inRecord) {
      if (this.recordReader.close()) {
        this.inRecord = false;
        this.finishRecord();
      }
      return;
    }
    if (this.depth === 0) {
      this.finish();
      return;
    }

    const element = this.stack.pop()!;
    const parent = this.stack[this.stack.length - 1];
    if (parent) {
      parent.children.push(element);
      return;
    }
    this.topLevel.push(element);
    if (element.name === 'report_metadata') this.hasMetadata = true;
    if (element.name === 'policy_published') this.hasPolicy = true;
  }

  private startRecord(): void {
    this.recordCount += 1;
    if (this.recordCount > this.limits.maxRecordsPerReport) {
      throw new ReportError(
        'too-many-records',
        `More than ${this.limits.maxRecordsPerReport} records in one report (MAX_RECORDS_PER_REPORT)`,
        this.context,
      );
    }
    // The schema puts report_metadata and policy_published first. The header leaves as soon
    // as both are here, so that a large report is stored while it is still being read.
    if (!this.header && this.hasHeaderElements()) {
      this.header = this.buildHeader();
      this.pending.push({ kind: 'header', header: this.header });
    }
  }

  private finishRecord(): void {
    this.batch.push(this.recordReader.finish(this.recordCount));
    if (this.header && this.batch.length >= RECORD_BATCH_SIZE) this.flushRecords();
    // Records before the header wait in memory, so their number is capped.
    if (!this.header && this.batch.length > this.limits.maxRecordsBeforeHeader) {
      throw new ReportError(
        'header-after-records',
        `More than ${this.limits.maxRecordsBeforeHeader} records before report_metadata and ` +
          `policy_published`,
        this.context,
      );
    }
  }

  private flushRecords(): void {
    if (this.batch.length === 0) return;
    this.pending.push({ kind: 'records', records: this.batch });
    this.batch = [];
  }

  private finish(): void {
    this.closed = true;
    if (!this.header) {
      this.header = this.buildHeader();
      this.pending.push({ kind: 'header', header: this.header });
    }
    this.flushRecords();
  }

  private hasHeaderElements(): boolean {
    return this.hasMetadata && this.hasPolicy;
  }

  private buildHeader(): ReportHeader {
    const find = (name: string) => this.topLevel.find((element) => element.name === name);
    const metadataElement = find('report_metadata');
    const policyElement = find('policy_published');

    const metadata = normalizeMetadata(metadataElement, this.context);
    const policy = normalizePolicy(policyElement, this.context);

    // An early draft put <version> inside <report_metadata>.
    const versionElement =
      find('version') ?? metadataElement?.children.find((child) => child.name === 'version');
    const version = versionElement?.text.trim() || null;

    let extensions: Record<string, unknown> | null = null;
    const add = (name: string, value: unknown) => {
      extensions ??= {};
      extensions[name] = value;
    };
    for (const element of this.topLevel) {
      if (!KNOWN_TOP_LEVEL.has(element.name)) add(element.name, elementToJson(element));
    }
    for (const [name, value] of Object.entries(metadataExtensions(metadataElement) ?? {})) {
      add(`report_metadata/${name}`, value);
    }
    for (const [name, value] of Object.entries(policyExtensions(policyElement) ?? {})) {
      add(`policy_published/${name}`, value);
    }

    return {
      version,
      namespace: this.namespace,
      metadata,
      policy,
      extensions,
      warnings: this.context.warnings,
    };
  }
}

function namespaceOfPrefix(
  qualifiedName: string,
  attributes: Record<string, string>,
): string | null {
  const colon = qualifiedName.indexOf(':');
  if (colon === -1) return null;
  return attributes[`xmlns:${qualifiedName.slice(0, colon)}`] ?? null;
}

function attributesOrNull(
  attributes: Record<string, string>,
  reader: ReportReader,
): Record<string, string> | null {
  let kept: Record<string, string> | null = null;
  for (const name in attributes) {
    const value = attributes[name];
    // Namespace declarations carry no report data.
    if (name === 'xmlns' || name.startsWith('xmlns:')) continue;
    reader.checkValueLength(value, `Attribute ${name}`);
    kept ??= {};
    kept[name] = value;
  }
  return kept;
}
