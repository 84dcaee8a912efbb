import { simpleParser, type Attachment } from 'mailparser';

import { ReportError, type DocumentPath } from './errors.js';
import { gunzipChunks, isGzip } from './gzip.js';
import type { ParseLimits } from './limits.js';
import { isZip, readZipEntries } from './zip.js';

/** An XML document found in an input, or a part of the input that could not be read. */
export type ExtractedPart =
  | { kind: 'xml'; path: DocumentPath; chunks: AsyncIterable<Buffer> }
  | { kind: 'error'; error: ReportError };

export type ContentKind = 'gzip' | 'zip' | 'xml' | 'email' | 'mbox' | 'unknown';

const SLICE_BYTES = 1024 * 1024;
const SNIFF_BYTES = 2048;

/** Tells the container or document type from the bytes alone; file names and MIME types lie. */
export function sniffContent(bytes: Buffer): ContentKind {
  if (isGzip(bytes)) return 'gzip';
  if (isZip(bytes)) return 'zip';

  // UTF-16 with or without a byte order mark.
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return 'xml';
  }
  if ((bytes[0] === 0x3c && bytes[1] === 0x00) || (bytes[0] === 0x00 && bytes[1] === 0x3c)) {
    return 'xml';
  }

  const head = bytes
    .subarray(0, SNIFF_BYTES)
    .toString('latin1')
    .replace(/^\ufeff|^\xef\xbb\xbf/, '');
  // Zero bytes count as padding here, so that UTF-16 without a byte order mark is found too.
  const trimmed = head.replace(/^[\s\x00]+/, '');
  if (trimmed.startsWith('<')) return 'xml';
  if (head.startsWith('From ')) return 'mbox';
  // An RFC 5322 header field: a name of printable characters other than the colon, then a colon.
  if (/^[!-9;-~]+:/.test(trimmed) && /\r?\n/.test(head)) return 'email';
  return 'unknown';
}

/** A short description of bytes that are not a report, for error messages. */
function describeContent(bytes: Buffer): string {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return 'a PNG image';
  }
  if (bytes.subarray(0, 4).toString('latin1') === '%PDF') return 'a PDF document';
  if (bytes.length === 0) return 'empty';
  const head = bytes.subarray(0, 16).toString('latin1');
  if (/^[\x20-\x7e\s]*$/.test(head))
    return `text starting ${JSON.stringify(head.trim().slice(0, 16))}`;
  return `binary data starting 0x${bytes.subarray(0, 4).toString('hex')}`;
}

/**
 * Finds every XML document in an input: plain XML, gzip, zip, e-mail messages (attachments
 * of any MIME type, nested message/rfc822, reports inline in the body) and mbox files,
 * nested up to the configured depth.
 * @throws ReportError for an input that is unusable as a whole (empty, too large, unknown)
 */
export async function* extractDocuments(
  bytes: Buffer,
  name: string,
  limits: ParseLimits,
  warn: (message: string) => void,
): AsyncGenerator<ExtractedPart> {
  const path = [name];
  if (bytes.length === 0) throw new ReportError('empty-input', 'Empty input', { document: path });
  if (bytes.length > limits.maxInputBytes) {
    throw new ReportError(
      'input-too-large',
      `Input of ${bytes.length} bytes is larger than the ${limits.maxInputBytes}-byte limit (MAX_INPUT_BYTES)`,
      { document: path },
    );
  }

  const kind = sniffContent(bytes);
  if (kind === 'unknown') {
    throw new ReportError(
      'unknown-format',
      `Not XML, gzip, zip or an e-mail message: ${describeContent(bytes)}`,
      { document: path },
    );
  }
  yield* new Extractor(limits, warn).fromBytes(bytes, path, 0);
}

class Extractor {
  private attachments = 0;

  constructor(
    private readonly limits: ParseLimits,
    private readonly warn: (message: string) => void,
  ) {}

  async *fromBytes(
    bytes: Buffer,
    path: DocumentPath,
    depth: number,
  ): AsyncGenerator<ExtractedPart> {
    if (depth > this.limits.maxContainerDepth) {
      yield failure(
        'nesting-too-deep',
        `Containers nested deeper than ${this.limits.maxContainerDepth} (MAX_CONTAINER_DEPTH)`,
        path,
      );
      return;
    }
    try {
      switch (sniffContent(bytes)) {
        case 'xml':
          yield { kind: 'xml', path, chunks: slices(bytes) };
          return;
        case 'gzip':
          yield* this.fromStream(gunzipChunks(bytes, path, this.limits, this.warn), path, depth);
          return;
        case 'zip':
          for await (const entry of readZipEntries(bytes, path, this.limits)) {
            this.countAttachment(path);
            yield* this.fromStream(entry.chunks(), [...path, entry.name], depth);
          }
          return;
        case 'email':
          // A message inside a message: mailparser lifts its attachments into the outer
          // message, so an empty inner one is not an error of its own.
          yield* this.fromEmail(bytes, path, depth, depth > 0);
          return;
        case 'mbox':
          yield* this.fromMbox(bytes, path, depth);
          return;
        case 'unknown':
          yield failure(
            'unknown-format',
            `Not XML, gzip, zip or e-mail: ${describeContent(bytes)}`,
            path,
          );
      }
    } catch (error) {
      if (error instanceof ReportError) yield { kind: 'error', error };
      else throw error;
    }
  }

  /**
   * Sniffs decompressed data from its first chunk: XML streams on, while a nested container
   * is collected (within the caps the decompressor enforces) and opened in turn.
   */
  private async *fromStream(
    chunks: AsyncGenerator<Buffer>,
    path: DocumentPath,
    depth: number,
  ): AsyncGenerator<ExtractedPart> {
    let first: Buffer | null = null;
    try {
      for (;;) {
        const next = await chunks.next();
        if (next.done) break;
        if (next.value.length > 0) {
          first = next.value;
          break;
        }
      }
    } catch (error) {
      if (error instanceof ReportError) {
        yield { kind: 'error', error };
        return;
      }
      throw error;
    }
    if (!first) {
      yield failure('empty-input', 'Decompressed to nothing', path);
      return;
    }

    const kind = sniffContent(first);
    if (kind === 'xml') {
      yield { kind: 'xml', path, chunks: prepend(first, chunks) };
      return;
    }
    if (kind === 'unknown') {
      await chunks.return(undefined);
      yield failure(
        'unknown-format',
        `Not a report: the content is ${describeContent(first)}`,
        path,
      );
      return;
    }

    const parts = [first];
    try {
      for await (const chunk of { [Symbol.asyncIterator]: () => chunks }) parts.push(chunk);
    } catch (error) {
      if (error instanceof ReportError) {
        yield { kind: 'error', error };
        return;
      }
      throw error;
    }
    yield* this.fromBytes(Buffer.concat(parts), path, depth + 1);
  }

  private async *fromEmail(
    bytes: Buffer,
    path: DocumentPath,
    depth: number,
    nested = false,
  ): AsyncGenerator<ExtractedPart> {
    let mail;
    try {
      mail = await simpleParser(bytes, {
        skipHtmlToText: true,
        skipTextLinks: true,
        skipTextToHtml: true,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      yield failure('bad-email', `Unreadable e-mail message: ${message}`, path);
      return;
    }

    // Counted before reading any, so that an input over the cap is rejected as a whole.
    if (this.attachments + mail.attachments.length > this.limits.maxAttachments) {
      yield failure(
        'too-many-attachments',
        `${mail.attachments.length} attachments, more than the limit of ${this.limits.maxAttachments} (MAX_ATTACHMENTS)`,
        path,
      );
      return;
    }

    let found = false;
    for (const [index, attachment] of mail.attachments.entries()) {
      this.countAttachment(path);
      const attachmentPath = [...path, attachmentName(attachment, index)];
      const content = attachment.content;
      const kind = sniffContent(content);
      const isMessage = attachment.contentType.toLowerCase() === 'message/rfc822';
      // Logos, signatures and other parts that are neither reports nor containers are skipped.
      if (kind === 'unknown' || ((kind === 'email' || kind === 'mbox') && !isMessage)) continue;
      found = true;
      yield* this.fromBytes(content, attachmentPath, depth + 1);
    }

    const inline = typeof mail.text === 'string' ? extractInlineReport(mail.text) : null;
    if (inline) {
      found = true;
      yield {
        kind: 'xml',
        path: [...path, 'message body'],
        chunks: slices(Buffer.from(inline, 'utf8')),
      };
    }
    if (!found && !nested) {
      yield failure(
        'no-report',
        'The message has no report attachment and no report in its body',
        path,
      );
    }
  }

  private async *fromMbox(
    bytes: Buffer,
    path: DocumentPath,
    depth: number,
  ): AsyncGenerator<ExtractedPart> {
    const text = bytes.toString('latin1');
    const starts = [0];
    for (const match of text.matchAll(/\nFrom /g)) starts.push(match.index + 1);
    for (const [index, start] of starts.entries()) {
      const end = starts[index + 1] ?? bytes.length;
      const message = bytes.subarray(text.indexOf('\n', start) + 1, end);
      yield* this.fromEmail(message, [...path, `message ${index + 1}`], depth + 1);
    }
  }

  private countAttachment(path: DocumentPath): void {
    this.attachments += 1;
    if (this.attachments > this.limits.maxAttachments) {
      throw new ReportError(
        'too-many-attachments',
        `More than ${this.limits.maxAttachments} attachments or archive entries (MAX_ATTACHMENTS)`,
        { document: path },
      );
    }
  }
}

function failure(code: ReportError['code'], message: string, path: DocumentPath): ExtractedPart {
  return { kind: 'error', error: new ReportError(code, message, { document: path }) };
}

function attachmentName(attachment: Attachment, index: number): string {
  return attachment.filename || `attachment ${index + 1} (${attachment.contentType})`;
}

/** Pulls a `<feedback>` document out of a text body, for reporters that send it inline. */
export function extractInlineReport(text: string): string | null {
  const start = text.search(/<(?:\w+:)?feedback[\s>]/);
  if (start === -1) return null;
  const declaration = text.lastIndexOf('<?xml', start);
  const from = declaration !== -1 ? declaration : start;
  const close = /<\/(?:\w+:)?feedback\s*>/g;
  let end = -1;
  for (const match of text.slice(start).matchAll(close))
    end = start + match.index + match[0].length;
  return text.slice(from, end === -1 ? text.length : end);
}

async function* slices(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += SLICE_BYTES) {
    yield bytes.subarray(offset, offset + SLICE_BYTES);
  }
}

async function* prepend(first: Buffer, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* { [Symbol.asyncIterator]: () => rest };
}
