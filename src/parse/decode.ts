import { isUtf8 } from 'node:buffer';

import { ReportError, type DocumentPath } from './errors.js';

const SNIFF_BYTES = 1024;

/**
 * Picks the character encoding of an XML document from its byte order mark or its XML
 * declaration (XML 1.0 appendix F), defaulting to UTF-8.
 */
export function sniffXmlEncoding(head: Buffer): { encoding: string; bomLength: number } {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) {
    return { encoding: 'utf-8', bomLength: 3 };
  }
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf-16le', bomLength: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf-16be', bomLength: 2 };
  // Without a byte order mark, UTF-16 shows as '<' (or whitespace) next to a zero byte.
  const first = head.findIndex(
    (byte) => byte !== 0x00 && byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09,
  );
  if (first !== -1 && head[first] === 0x3c) {
    if (first % 2 === 0 && head[first + 1] === 0x00) return { encoding: 'utf-16le', bomLength: 0 };
    if (first % 2 === 1 && head[first - 1] === 0x00) return { encoding: 'utf-16be', bomLength: 0 };
  }

  const start = head.subarray(0, SNIFF_BYTES).toString('latin1');
  const declared = /^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/.exec(start);
  return { encoding: declared ? declared[1].toLowerCase() : 'utf-8', bomLength: 0 };
}

/** Offset of the first byte that is not valid UTF-8, or -1. */
export function findInvalidUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const byte = bytes[i];
    let length = 0;
    if (byte < 0x80) length = 1;
    else if (byte >= 0xc2 && byte <= 0xdf) length = 2;
    else if (byte >= 0xe0 && byte <= 0xef) length = 3;
    else if (byte >= 0xf0 && byte <= 0xf4) length = 4;
    else return i;
    if (i + length > bytes.length) return i;
    for (let j = 1; j < length; j++) {
      if ((bytes[i + j] & 0xc0) !== 0x80) return i;
    }
    i += length;
  }
  return -1;
}

/**
 * Decodes document bytes to text chunks in the document's declared encoding.
 * Invalid UTF-8 is replaced with U+FFFD and reported once through `warn`, because reporters
 * have sent stray Windows-1252 bytes in otherwise readable reports and the counts matter more
 * than one damaged header value.
 * @throws ReportError `unsupported-encoding` when the declared encoding is unknown
 */
export async function* decodeXml(
  chunks: AsyncIterable<Buffer>,
  document: DocumentPath,
  warn: (message: string) => void,
): AsyncGenerator<string> {
  let decoder: TextDecoder | null = null;
  let strictUtf8 = false;
  let offset = 0;
  let warned = false;

  for await (let chunk of chunks) {
    if (!decoder) {
      const { encoding, bomLength } = sniffXmlEncoding(chunk);
      try {
        decoder = new TextDecoder(encoding, { fatal: false });
      } catch {
        throw new ReportError(
          'unsupported-encoding',
          `Unsupported XML encoding ${JSON.stringify(encoding)}`,
          { document },
        );
      }
      strictUtf8 = decoder.encoding === 'utf-8';
      chunk = chunk.subarray(bomLength);
      offset = bomLength;
    }
    // isUtf8 runs in native code; the byte-by-byte search only runs once something is wrong.
    if (strictUtf8 && !warned && !isUtf8(chunk)) {
      // A multi-byte character cut by a chunk boundary is not an error: skip its tail here
      // and ignore an unfinished sequence at the end.
      let start = 0;
      while (start < 3 && start < chunk.length && (chunk[start] & 0xc0) === 0x80) start += 1;
      const found = findInvalidUtf8(chunk.subarray(start));
      const invalid = found === -1 ? -1 : start + found;
      if (invalid !== -1 && invalid < chunk.length - 3) {
        warned = true;
        const value = chunk[invalid].toString(16).padStart(2, '0');
        warn(`Invalid UTF-8 byte 0x${value} at offset ${offset + invalid} replaced with U+FFFD`);
      }
    }
    offset += chunk.length;
    yield decoder.decode(chunk, { stream: true });
  }
  if (decoder) {
    const rest = decoder.decode();
    if (rest !== '') yield rest;
  }
}
