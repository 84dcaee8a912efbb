import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip, createGzip, gzipSync } from 'node:zlib';
import type pg from 'pg';

import type { InputContent, StreamedContent } from '../parse/index.js';

export type InputSource = 'file' | 'imap' | 'watch' | 'upload' | 'demo';
export type RawInputStatus = 'pending' | 'done' | 'partial' | 'quarantined';

export interface RawInput {
  /** The input as received: bytes in memory, or a stream for large files. */
  bytes: InputContent;
  /** File name or a description of the mail message, shown in errors and the dashboard. */
  name: string;
  source: InputSource;
  /** Origin of the input: `{ path }` for files, `{ mailbox, uid, uidValidity }` for IMAP. */
  origin: Record<string, unknown>;
}

export interface StoredRawInput {
  id: number;
  status: RawInputStatus;
  /** True when the same bytes were stored before. */
  existed: boolean;
}

export interface PartError {
  code: string;
  message: string;
  document: string | null;
}

// Inputs that are not already compressed are stored gzipped: report XML shrinks 10–30 times.
const COMPRESS_ABOVE_BYTES = 4096;

const INSERT_RAW_INPUT = `
  INSERT INTO raw_inputs (sha256, byte_size, content_encoding, content, name, source, origin)
  VALUES ($1, $2, $3, $4, $5, $6, $7)
  ON CONFLICT (sha256) DO NOTHING
  RETURNING id, status`;

const FIND_RAW_INPUT = 'SELECT id, status FROM raw_inputs WHERE sha256 = $1';

const INSERT_DELIVERY = `
  INSERT INTO raw_input_deliveries (raw_input_id, source, name, origin) VALUES ($1, $2, $3, $4)`;

const SELECT_CONTENT = 'SELECT content_encoding, content, byte_size FROM raw_inputs WHERE id = $1';

export function sha256(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

interface PreparedContent {
  digest: Buffer;
  size: number;
  encoding: 'gzip' | 'identity';
  stored: Buffer;
}

/** Hashes the input and compresses it for storage, streaming when it is not in memory. */
async function prepareContent(content: InputContent): Promise<PreparedContent> {
  if (Buffer.isBuffer(content)) {
    const compress = content.length > COMPRESS_ABOVE_BYTES && !isCompressed(content);
    return {
      digest: sha256(content),
      size: content.length,
      encoding: compress ? 'gzip' : 'identity',
      stored: compress ? gzipSync(content, { level: 1 }) : content,
    };
  }

  const hash = createHash('sha256');
  const raw: Buffer[] = [];
  let gzip: ReturnType<typeof createGzip> | null = null;
  const compressed: Buffer[] = [];
  let size = 0;
  for await (const chunk of content.open()) {
    if (size === 0 && chunk.length > 0 && !isCompressed(chunk)) {
      gzip = createGzip({ level: 1 });
      gzip.on('data', (data: Buffer) => compressed.push(data));
    }
    hash.update(chunk);
    size += chunk.length;
    if (gzip) {
      if (!gzip.write(chunk)) await new Promise((resolve) => gzip!.once('drain', resolve));
    } else raw.push(chunk);
  }
  if (gzip) {
    await new Promise<void>((resolve, reject) => {
      gzip!.once('end', resolve);
      gzip!.once('error', reject);
      gzip!.end();
    });
  }
  return {
    digest: hash.digest(),
    size,
    encoding: gzip ? 'gzip' : 'identity',
    stored: Buffer.concat(gzip ? compressed : raw),
  };
}

function isCompressed(bytes: Buffer): boolean {
  const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const zip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  return gzip || zip;
}

/**
 * Stores an input's bytes before anything tries to parse them, keyed by SHA-256, and records
 * the delivery. Returns the existing row when the same bytes arrived before.
 */
export async function saveRawInput(pool: pg.Pool, input: RawInput): Promise<StoredRawInput> {
  const { digest, size, encoding, stored } = await prepareContent(input.bytes);
  const origin = JSON.stringify(input.origin);

  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const inserted = await client.query<{ id: number; status: RawInputStatus }>(INSERT_RAW_INPUT, [
      digest,
      size,
      encoding,
      stored,
      input.name,
      input.source,
      origin,
    ]);
    let row = inserted.rows[0];
    const existed = !row;
    if (!row) {
      const found = await client.query<{ id: number; status: RawInputStatus }>(FIND_RAW_INPUT, [
        digest,
      ]);
      row = found.rows[0];
    }
    await client.query(INSERT_DELIVERY, [row.id, input.source, input.name, origin]);
    await client.query('COMMIT');
    return { id: row.id, status: row.status, existed };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Loads a stored input as it was received. Compressed storage is decompressed as a stream,
 * so that reading a large plain report again needs no more memory than the first time.
 */
export async function loadRawContent(
  db: pg.Pool | pg.PoolClient,
  id: number,
): Promise<InputContent> {
  const { rows } = await db.query<{ content_encoding: string; content: Buffer; byte_size: number }>(
    SELECT_CONTENT,
    [id],
  );
  if (rows.length === 0) throw new Error(`Raw input ${id} not found`);
  const { content_encoding: encoding, content, byte_size: size } = rows[0];
  if (encoding !== 'gzip') return content;
  const streamed: StreamedContent = {
    size,
    open: () => Readable.from([content]).pipe(createGunzip({ chunkSize: 1024 * 1024 })),
  };
  return streamed;
}

/**
 * Locks a pending input for processing in the caller's transaction. Returns null when another
 * process has claimed it (SKIP LOCKED), or the status when it is no longer pending.
 */
export async function claimRawInput(
  client: pg.PoolClient,
  id: number,
): Promise<{ status: RawInputStatus } | null> {
  const { rows } = await client.query<{ status: RawInputStatus }>(
    // NO KEY UPDATE: a plain FOR UPDATE would also block other processes' delivery rows, whose
    // foreign key check takes a KEY SHARE lock, so they would wait instead of moving on.
    'SELECT status FROM raw_inputs WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED',
    [id],
  );
  return rows[0] ?? null;
}

export interface RawInputOutcome {
  status: Exclude<RawInputStatus, 'pending'>;
  errors: PartError[];
  reportsStored: number;
  reportsDuplicate: number;
  reportsForeign: number;
}

export async function finishRawInput(
  client: pg.PoolClient,
  id: number,
  outcome: RawInputOutcome,
): Promise<void> {
  const first = outcome.errors[0];
  await client.query(
    `UPDATE raw_inputs
        SET status = $2, error_code = $3, error_message = $4, errors = $5,
            reports_stored = $6, reports_duplicate = $7, reports_foreign = $8,
            processed_at = now()
      WHERE id = $1`,
    [
      id,
      outcome.status,
      first?.code ?? null,
      first?.message ?? null,
      JSON.stringify(outcome.errors),
      outcome.reportsStored,
      outcome.reportsDuplicate,
      outcome.reportsForeign,
    ],
  );
}

/**
 * Counts one more attempt at reading a pending input, committed before the attempt starts so
 * that an attempt that kills the process still counts. Returns the count, or null when the
 * input is no longer pending or another process is reading it (SKIP LOCKED: never waits).
 */
export async function countAttempt(pool: pg.Pool, id: number, change = 1): Promise<number | null> {
  const { rows } = await pool.query<{ attempts: number }>(
    `UPDATE raw_inputs SET attempts = greatest(attempts + $2, 0)
      WHERE id = (SELECT id FROM raw_inputs WHERE id = $1 AND status = 'pending'
                  FOR NO KEY UPDATE SKIP LOCKED)
      RETURNING attempts`,
    [id, change],
  );
  return rows[0]?.attempts ?? null;
}

/** Puts a processed input back to pending so that `reprocess` reads it again. */
export async function reopenRawInputs(
  pool: pg.Pool,
  statuses: RawInputStatus[],
): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    `UPDATE raw_inputs SET status = 'pending', attempts = 0 WHERE status = ANY($1) RETURNING id`,
    [statuses],
  );
  return rows.map((row) => row.id);
}

/** Ids of inputs stored but not finished, such as those a crash interrupted. */
export async function findPendingRawInputs(pool: pg.Pool, limit = 100): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    `SELECT id FROM raw_inputs WHERE status = 'pending' ORDER BY id LIMIT $1`,
    [limit],
  );
  return rows.map((row) => row.id);
}

/** Loads a stored input whole, for showing or downloading it. */
export async function loadRawBytes(db: pg.Pool | pg.PoolClient, id: number): Promise<Buffer> {
  const content = await loadRawContent(db, id);
  if (Buffer.isBuffer(content)) return content;
  const chunks: Buffer[] = [];
  for await (const chunk of content.open()) chunks.push(chunk);
  return Buffer.concat(chunks);
}
