import type { ReportRecord } from '../domain/report.js';
import { ReportError } from './errors.js';
import {
  normalizeDomain,
  normalizeIp,
  normalizeKeyword,
  type NormalizeContext,
} from './normalize.js';
import { elementToJson, type XmlElement } from './xml-tree.js';

// Fields that the text of known leaf elements goes to. Paths are relative to <record>; the draft's
// <identities> is the same as <identifiers>.
type Slot =
  | 'sourceIp'
  | 'count'
  | 'disposition'
  | 'evalDkim'
  | 'evalSpf'
  | 'reasonType'
  | 'reasonComment'
  | 'headerFrom'
  | 'envelopeFrom'
  | 'envelopeTo'
  | 'authDomain'
  | 'authSelector'
  | 'authScope'
  | 'authResult'
  | 'authHumanResult';

type Container =
  | 'record'
  | 'row'
  | 'policy_evaluated'
  | 'reason'
  | 'identifiers'
  | 'auth_results'
  | 'dkim'
  | 'spf';

const CHILDREN: Record<Container, Record<string, Container | Slot>> = {
  record: {
    row: 'row',
    identifiers: 'identifiers',
    identities: 'identifiers',
    auth_results: 'auth_results',
  },
  row: { source_ip: 'sourceIp', count: 'count', policy_evaluated: 'policy_evaluated' },
  policy_evaluated: {
    disposition: 'disposition',
    dkim: 'evalDkim',
    spf: 'evalSpf',
    reason: 'reason',
  },
  reason: { type: 'reasonType', comment: 'reasonComment' },
  identifiers: {
    header_from: 'headerFrom',
    envelope_from: 'envelopeFrom',
    envelope_to: 'envelopeTo',
  },
  auth_results: { dkim: 'dkim', spf: 'spf' },
  dkim: {
    domain: 'authDomain',
    selector: 'authSelector',
    result: 'authResult',
    human_result: 'authHumanResult',
  },
  spf: {
    domain: 'authDomain',
    scope: 'authScope',
    result: 'authResult',
    human_result: 'authHumanResult',
  },
};

type KnownFrame = Exclude<Frame, { kind: 'unknown' }>;

// One shared frame per known element, so that opening one allocates nothing.
const KNOWN_FRAMES: Record<Container, Map<string, KnownFrame>> = Object.fromEntries(
  Object.entries(CHILDREN).map(([container, children]) => [
    container,
    new Map(
      Object.entries(children).map(([name, target]): [string, KnownFrame] => [
        name,
        target in CHILDREN
          ? { kind: 'container', container: target as Container, name }
          : { kind: 'leaf', slot: target as Slot, name },
      ]),
    ),
  ]),
) as Record<Container, Map<string, KnownFrame>>;

const RECORD_FRAME: KnownFrame = { kind: 'container', container: 'record', name: 'record' };

interface RawAuthResult {
  domain: string | null;
  selector: string | null;
  scope: string | null;
  result: string | null;
  humanResult: string | null;
}

interface RawRecord {
  sourceIp: string | null;
  count: string | null;
  disposition: string | null;
  evalDkim: string | null;
  evalSpf: string | null;
  headerFrom: string | null;
  envelopeFrom: string | null;
  envelopeTo: string | null;
  reasons: Array<{ type: string | null; comment: string | null }>;
  dkim: RawAuthResult[];
  spf: RawAuthResult[];
  extensions: Record<string, unknown> | null;
}

type Frame =
  | { kind: 'container'; container: Container; name: string }
  | { kind: 'leaf'; slot: Slot; name: string }
  | { kind: 'unknown'; element: XmlElement; prefix: string };

/**
 * Builds one `<record>` from parser events without an element tree: known elements write
 * straight into their field, and only unknown elements are kept as small trees. This is the
 * hot path of a large report, run for every element of every record.
 */
export class RecordReader {
  private frames: Frame[] = [];
  private record: RawRecord = emptyRecord();
  private text = '';

  constructor(
    private readonly maxValueLength: number,
    private readonly context: NormalizeContext,
    /** Counts an unknown element against the report's cap; throws when it is passed. */
    private readonly countKeptElement: () => void,
  ) {}

  start(): void {
    this.frames = [RECORD_FRAME];
    this.record = emptyRecord();
    this.text = '';
  }

  open(name: string, attributes: Record<string, string> | null): void {
    const parent = this.frames[this.frames.length - 1];

    if (parent.kind === 'container') {
      // Attributes on known elements carry nothing the schema defines; they are dropped.
      const known = KNOWN_FRAMES[parent.container].get(name);
      if (known !== undefined) {
        if (known.kind === 'container') this.openContainer(known);
        else this.text = '';
        this.frames.push(known);
        return;
      }
    }

    // Anything else is kept as it came under a path such as `row/future_field`.
    this.countKeptElement();
    const element: XmlElement = { name, attributes, text: '', children: [] };
    if (parent.kind === 'unknown') {
      parent.element.children.push(element);
      this.frames.push({ kind: 'unknown', element, prefix: parent.prefix });
    } else {
      this.frames.push({ kind: 'unknown', element, prefix: this.pathPrefix() });
    }
  }

  addText(text: string): void {
    const frame = this.frames[this.frames.length - 1];
    if (frame.kind === 'leaf') {
      this.text += text;
      if (this.text.length > this.maxValueLength) this.tooLong(frame.name);
    } else if (frame.kind === 'unknown') {
      frame.element.text += text;
      if (frame.element.text.length > this.maxValueLength) this.tooLong(frame.element.name);
    }
  }

  /** Closes the current element; returns true when it was the `<record>` itself. */
  close(): boolean {
    const frame = this.frames.pop()!;
    if (frame.kind === 'leaf') {
      this.assign(frame.slot, this.text);
      this.text = '';
    } else if (frame.kind === 'unknown') {
      const parent = this.frames[this.frames.length - 1];
      if (parent?.kind !== 'unknown')
        this.addExtension(frame.prefix + frame.element.name, frame.element);
    }
    return this.frames.length === 0;
  }

  /** Normalizes the finished record. `index` counts records from 1 for messages. */
  finish(index: number): ReportRecord {
    return normalizeRawRecord(this.record, index, this.context);
  }

  private openContainer(frame: { container: Container }): void {
    if (frame.container === 'reason') this.record.reasons.push({ type: null, comment: null });
    else if (frame.container === 'dkim') this.record.dkim.push(emptyAuthResult());
    else if (frame.container === 'spf') this.record.spf.push(emptyAuthResult());
  }

  private pathPrefix(): string {
    let prefix = '';
    for (let i = 1; i < this.frames.length; i++) {
      const frame = this.frames[i];
      prefix += `${frame.kind === 'unknown' ? frame.element.name : frame.name}/`;
    }
    return prefix;
  }

  private tooLong(name: string): never {
    throw new ReportError(
      'value-too-long',
      `Text of <${name}> longer than ${this.maxValueLength} characters (MAX_VALUE_LENGTH)`,
      this.context,
    );
  }

  private assign(slot: Slot, raw: string): void {
    const text = raw.trim();
    const value = text === '' ? null : text;
    const record = this.record;
    // A repeated element keeps its first value, as the schema allows only one.
    switch (slot) {
      case 'reasonType':
        record.reasons[record.reasons.length - 1].type ??= value;
        return;
      case 'reasonComment':
        record.reasons[record.reasons.length - 1].comment ??= value;
        return;
      case 'authDomain':
      case 'authSelector':
      case 'authScope':
      case 'authResult':
      case 'authHumanResult': {
        const parent = this.frames[this.frames.length - 1] as { container: Container };
        const list = parent.container === 'dkim' ? record.dkim : record.spf;
        const result = list[list.length - 1];
        const field = AUTH_FIELDS[slot];
        result[field] ??= value;
        return;
      }
      default:
        record[slot] ??= value;
    }
  }

  private addExtension(path: string, element: XmlElement): void {
    const extensions = (this.record.extensions ??= {});
    const value = elementToJson(element);
    const existing = extensions[path];
    if (existing === undefined) extensions[path] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else extensions[path] = [existing, value];
  }
}

const AUTH_FIELDS = {
  authDomain: 'domain',
  authSelector: 'selector',
  authScope: 'scope',
  authResult: 'result',
  authHumanResult: 'humanResult',
} as const;

function emptyRecord(): RawRecord {
  return {
    sourceIp: null,
    count: null,
    disposition: null,
    evalDkim: null,
    evalSpf: null,
    headerFrom: null,
    envelopeFrom: null,
    envelopeTo: null,
    reasons: [],
    dkim: [],
    spf: [],
    extensions: null,
  };
}

function emptyAuthResult(): RawAuthResult {
  return { domain: null, selector: null, scope: null, result: null, humanResult: null };
}

function parseCount(value: string | null, index: number, context: NormalizeContext): number {
  if (value === null) {
    throw new ReportError('missing-field', `Missing row/count in record ${index}`, context);
  }
  const count = Number(value);
  if (!/^\d+$/.test(value) || count > 2 ** 31 - 1) {
    throw new ReportError(
      'invalid-value',
      `Invalid row/count ${JSON.stringify(value)} in record ${index}, expected a whole number`,
      context,
    );
  }
  return count;
}

function normalizeRawRecord(
  raw: RawRecord,
  index: number,
  context: NormalizeContext,
): ReportRecord {
  return {
    sourceIp: raw.sourceIp === null ? null : normalizeIp(raw.sourceIp, context),
    count: parseCount(raw.count, index, context),
    disposition: normalizeKeyword(raw.disposition),
    evalDkim: normalizeKeyword(raw.evalDkim),
    evalSpf: normalizeKeyword(raw.evalSpf),
    // An empty <reason/> carries nothing to keep.
    reasons: raw.reasons
      .filter((reason) => reason.type !== null || reason.comment !== null)
      .map((reason) => ({ type: normalizeKeyword(reason.type) ?? '', comment: reason.comment })),
    headerFrom: normalizeDomain(raw.headerFrom),
    envelopeFrom: normalizeDomain(raw.envelopeFrom),
    envelopeTo: normalizeDomain(raw.envelopeTo),
    dkim: raw.dkim.map((result) => ({
      domain: normalizeDomain(result.domain) ?? '',
      selector: result.selector,
      result: normalizeKeyword(result.result) ?? '',
      humanResult: result.humanResult,
    })),
    spf: raw.spf.map((result) => ({
      domain: normalizeDomain(result.domain) ?? '',
      scope: normalizeKeyword(result.scope),
      result: normalizeKeyword(result.result) ?? '',
      humanResult: result.humanResult,
    })),
    extensions: raw.extensions,
  };
}
