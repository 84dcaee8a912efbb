import type { Response } from 'express';
import type pg from 'pg';

import { extractDocuments } from '../../parse/containers.js';
import { decodeXml } from '../../parse/decode.js';
import type { ParseLimits } from '../../parse/limits.js';
import { findRawInputName } from '../../store/dashboard.js';
import { loadRawBytes } from '../../store/raw-inputs.js';
import { writeChunk } from '../csv-response.js';
import { notFound } from '../errors.js';

// How the pipeline names a document inside its input (reports.document).
const PATH_SEPARATOR = ' › ';

/** A file name safe inside a quoted Content-Disposition value. */
function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100) || 'download';
}

/**
 * Headers for raw report content: plain text, never sniffed as HTML, and offered as a
 * download when opened directly, since every byte of it comes from the reporter.
 */
function setRawHeaders(res: Response, contentType: string, fileName: string): void {
  res.set({
    'Content-Type': contentType,
    'X-Content-Type-Options': 'nosniff',
    'Content-Disposition': `attachment; filename="${safeFileName(fileName)}"`,
    'Cache-Control': 'no-store',
  });
}

/**
 * Streams the XML document of one report as UTF-8 text, taken again from its stored raw input
 * (which may be a gzip, zip or e-mail message) with the parser's own limits.
 */
export async function sendReportDocument(
  res: Response,
  pool: pg.Pool,
  limits: ParseLimits,
  reportId: number,
  source: { rawInputId: number; document: string },
): Promise<void> {
  const bytes = await loadRawBytes(pool, source.rawInputId);
  const input = await findRawInputName(pool, source.rawInputId);

  for await (const part of extractDocuments(bytes, input?.name ?? 'input', limits, () => {})) {
    if (part.kind !== 'xml') continue;
    if (part.path.join(PATH_SEPARATOR) !== source.document) {
      // Each part has to be read to its end before the next one is produced.
      for await (const _chunk of part.chunks) continue;
      continue;
    }
    setRawHeaders(res, 'text/plain; charset=utf-8', `report-${reportId}.xml`);
    for await (const text of decodeXml(part.chunks, part.path, () => {})) {
      if (res.destroyed) break;
      await writeChunk(res, text);
    }
    res.end();
    return;
  }
  throw notFound(
    `The XML of report ${reportId} was not found in raw input ${source.rawInputId}; ` +
      `download the whole input from /api/inputs/${source.rawInputId}/raw`,
  );
}

/** Sends a stored raw input's original bytes as a download. */
export async function sendRawInput(res: Response, pool: pg.Pool, id: number): Promise<void> {
  const input = await findRawInputName(pool, id);
  if (!input) throw notFound(`Raw input ${id} not found`);
  const bytes = await loadRawBytes(pool, id);
  setRawHeaders(res, 'application/octet-stream', input.name);
  res.send(bytes);
}
