import yauzl from 'yauzl';
import type { Readable } from 'node:stream';

import { ReportError, type DocumentPath } from './errors.js';
import { checkDecompressedSize } from './gzip.js';
import type { ParseLimits } from './limits.js';

export function isZip(bytes: Buffer): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === 0x50 &&
    bytes[1] === 0x4b &&
    ((bytes[2] === 0x03 && bytes[3] === 0x04) || (bytes[2] === 0x05 && bytes[3] === 0x06))
  );
}

export interface ZipEntry {
  name: string;
  /** Streams the entry's decompressed bytes with the size and ratio caps applied. */
  chunks: () => AsyncGenerator<Buffer>;
}

/** Entries that macOS and other archivers add and that never hold a report. */
function isMetadataEntry(name: string): boolean {
  const base = name.split('/').pop() ?? '';
  return name.startsWith('__MACOSX/') || base.startsWith('._') || base === '.DS_Store';
}

/**
 * Lists the file entries of a zip archive, skipping directories and archiver metadata.
 * Each entry is read when its `chunks` is iterated, one entry at a time.
 * @throws ReportError `bad-zip` or `too-many-attachments`
 */
export async function* readZipEntries(
  bytes: Buffer,
  document: DocumentPath,
  limits: ParseLimits,
): AsyncGenerator<ZipEntry> {
  const zip = await openZip(bytes, document);
  try {
    // The central directory's count includes folders and metadata entries, which are skipped
    // below; twice the limit leaves room for them while stopping absurd archives up front.
    if (zip.entryCount > limits.maxAttachments * 2) {
      throw new ReportError(
        'too-many-attachments',
        `${zip.entryCount} entries in the zip archive, more than the limit of ${limits.maxAttachments} (MAX_ATTACHMENTS)`,
        { document },
      );
    }
    let index = 0;
    for (;;) {
      const entry = await nextEntry(zip, document);
      if (!entry) break;
      const name = entry.fileName;
      if (name.endsWith('/') || isMetadataEntry(name)) continue;

      index += 1;
      if (index > limits.maxAttachments) {
        throw new ReportError(
          'too-many-attachments',
          `More than ${limits.maxAttachments} entries in the zip archive (MAX_ATTACHMENTS)`,
          { document },
        );
      }
      // An empty entry name occurs in real archives; number it so errors can point at it.
      const entryName = name === '' ? `entry ${index}` : name;
      const entryPath = [...document, entryName];
      yield {
        name: entryName,
        chunks: () => readEntry(zip, entry, entryPath, limits),
      };
    }
  } finally {
    zip.close();
  }
}

function openZip(bytes: Buffer, document: DocumentPath): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true, validateEntrySizes: true }, (error, zip) => {
      if (error || !zip) {
        reject(new ReportError('bad-zip', `Invalid zip archive: ${error?.message}`, { document }));
      } else resolve(zip);
    });
  });
}

function nextEntry(zip: yauzl.ZipFile, document: DocumentPath): Promise<yauzl.Entry | null> {
  return new Promise((resolve, reject) => {
    const onEntry = (entry: yauzl.Entry) => {
      cleanup();
      resolve(entry);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new ReportError('bad-zip', `Invalid zip archive: ${error.message}`, { document }));
    };
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

async function* readEntry(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  document: DocumentPath,
  limits: ParseLimits,
): AsyncGenerator<Buffer> {
  // The sizes in the central directory are only claims; the caps below count real bytes.
  checkDecompressedSize(entry.uncompressedSize, entry.compressedSize, document, limits);

  const stream = await new Promise<Readable>((resolve, reject) => {
    zip.openReadStream(entry, (error, readStream) => {
      if (error || !readStream) {
        reject(
          new ReportError('bad-zip', `Cannot read zip entry: ${error?.message}`, { document }),
        );
      } else resolve(readStream);
    });
  });

  let total = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      checkDecompressedSize(total, entry.compressedSize, document, limits);
      yield chunk;
    }
  } catch (error) {
    if (error instanceof ReportError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new ReportError('bad-zip', `Corrupt zip entry: ${message}`, { document, cause: error });
  } finally {
    stream.destroy();
  }
}
