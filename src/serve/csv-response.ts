import type { Response } from 'express';

import { csvLine } from '../export/csv.js';

type Row = Record<string, unknown>;

/**
 * A column of a CSV twin: the header and how to read the cell from a row of the JSON list.
 * Lists inside a cell are joined with `;`, as in `dmarc-lens export`.
 */
export interface CsvColumn {
  header: string;
  value?: (row: Row) => unknown;
}

/** Makes a column; without `value` the cell is the row's field named like the header. */
export function column(header: string, value?: (row: Row) => unknown): CsvColumn {
  return { header, value };
}

function cellValue(column: CsvColumn, row: Row): unknown {
  const value = column.value ? column.value(row) : row[column.header];
  if (Array.isArray(value)) return value.join(';');
  return value;
}

/**
 * Streams batches of rows as a CSV download. Cells go through `csvLine`, which neutralises
 * spreadsheet formulas. The loop waits for the socket to drain, and stops reading (which
 * releases the database cursor) when the client goes away.
 */
export async function sendCsv(
  res: Response,
  fileName: string,
  columns: CsvColumn[],
  batches: AsyncGenerator<Row[]>,
): Promise<void> {
  let closed = false;
  res.on('close', () => {
    closed = true;
  });

  // Read the first batch before sending headers, so that a failing query still gets a JSON
  // error response with the right status.
  const first = await batches.next();

  res.status(200);
  res.set({
    'Content-Type': 'text/csv; charset=utf-8',
    'Content-Disposition': `attachment; filename="${fileName}"`,
    'Cache-Control': 'no-store',
  });
  await writeChunk(res, csvLine(columns.map((column) => column.header)));

  let result = first;
  try {
    while (!result.done && !closed) {
      let chunk = '';
      for (const row of result.value)
        chunk += csvLine(columns.map((column) => cellValue(column, row)));
      await writeChunk(res, chunk);
      result = await batches.next();
    }
  } finally {
    if (!result.done) await batches.return(undefined);
  }
  if (!closed) res.end();
}

/** Writes a chunk and waits until the socket drains, or returns when the client went away. */
export async function writeChunk(res: Response, chunk: string): Promise<void> {
  if (res.destroyed) return;
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const settle = () => {
      res.off('drain', settle);
      res.off('close', settle);
      resolve();
    };
    res.on('drain', settle);
    res.on('close', settle);
  });
}
