import zlib from 'node:zlib';

import { ReportError, type DocumentPath } from './errors.js';
import { RATIO_CHECK_THRESHOLD_BYTES, type ParseLimits } from './limits.js';

const FLAG_HEADER_CRC = 0x02;
const FLAG_EXTRA = 0x04;
const FLAG_NAME = 0x08;
const FLAG_COMMENT = 0x10;

export function isGzip(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Offset of the deflate data after a gzip member header (RFC 1952 §2.3). */
function skipGzipHeader(bytes: Buffer, start: number, document: DocumentPath): number {
  if (bytes.length < start + 10 || bytes[start + 2] !== 8) {
    throw new ReportError('bad-gzip', 'Invalid gzip header', { document });
  }
  const flags = bytes[start + 3];
  let offset = start + 10;
  const truncated = () => new ReportError('bad-gzip', 'Truncated gzip header', { document });
  if (flags & FLAG_EXTRA) {
    if (offset + 2 > bytes.length) throw truncated();
    offset += 2 + bytes.readUInt16LE(offset);
  }
  for (const flag of [FLAG_NAME, FLAG_COMMENT]) {
    if (!(flags & flag)) continue;
    const end = bytes.indexOf(0, offset);
    if (end === -1) throw truncated();
    offset = end + 1;
  }
  if (flags & FLAG_HEADER_CRC) offset += 2;
  if (offset <= start || offset > bytes.length) {
    throw new ReportError('bad-gzip', 'Truncated gzip header', { document });
  }
  return offset;
}

/**
 * Decompresses gzip data as a stream of chunks, member after member.
 * Bytes after the last member that do not start another one are ignored with a warning:
 * Mimecast and others append a CRLF, which strict readers such as Node's gunzip reject.
 * @throws ReportError `bad-gzip`, `decompressed-too-large` or `compression-ratio`
 */
export async function* gunzipChunks(
  bytes: Buffer,
  document: DocumentPath,
  limits: ParseLimits,
  warn: (message: string) => void,
): AsyncGenerator<Buffer> {
  let memberStart = 0;
  let total = 0;

  while (memberStart < bytes.length) {
    const dataStart = skipGzipHeader(bytes, memberStart, document);
    const inflate = zlib.createInflateRaw({ chunkSize: 256 * 1024 });
    let crc = 0;
    let memberSize = 0;
    try {
      inflate.end(bytes.subarray(dataStart));
      for await (const chunk of inflate as AsyncIterable<Buffer>) {
        total += chunk.length;
        memberSize += chunk.length;
        checkDecompressedSize(total, bytes.length, document, limits);
        crc = zlib.crc32(chunk, crc);
        yield chunk;
      }
    } catch (error) {
      if (error instanceof ReportError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new ReportError('bad-gzip', `Corrupt gzip data: ${message}`, {
        document,
        cause: error,
      });
    } finally {
      inflate.destroy();
    }

    const trailer = dataStart + inflate.bytesWritten;
    if (trailer + 8 > bytes.length) {
      throw new ReportError('bad-gzip', 'Truncated gzip data: the trailer is missing', {
        document,
      });
    }
    if (
      bytes.readUInt32LE(trailer) !== crc ||
      bytes.readUInt32LE(trailer + 4) !== memberSize % 2 ** 32
    ) {
      throw new ReportError('bad-gzip', 'Gzip checksum mismatch: the data is corrupt', {
        document,
      });
    }

    memberStart = trailer + 8;
    if (memberStart < bytes.length && !isGzip(bytes.subarray(memberStart))) {
      warn(
        `Ignored ${bytes.length - memberStart} bytes after the gzip data in ${document.join(' › ')}`,
      );
      break;
    }
  }
}

/** @throws ReportError when a decompressed document passes the size or ratio cap */
export function checkDecompressedSize(
  decompressed: number,
  compressed: number,
  document: DocumentPath,
  limits: ParseLimits,
): void {
  if (decompressed > limits.maxDecompressedBytes) {
    throw new ReportError(
      'decompressed-too-large',
      `Decompressed data larger than ${limits.maxDecompressedBytes} bytes (MAX_DECOMPRESSED_BYTES)`,
      { document },
    );
  }
  if (
    decompressed > RATIO_CHECK_THRESHOLD_BYTES &&
    decompressed / Math.max(compressed, 1) > limits.maxCompressionRatio
  ) {
    throw new ReportError(
      'compression-ratio',
      `Compression ratio above ${limits.maxCompressionRatio}:1 (MAX_COMPRESSION_RATIO): ` +
        `${compressed} bytes expand past ${decompressed}, likely a decompression bomb`,
      { document },
    );
  }
}
