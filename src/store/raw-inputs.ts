import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type pg from 'pg';

export type InputSource = 'file' | 'imap' | 'watch' | 'upload' | 'demo';
export type RawInputStatus = 'pending' | 'done' | 'partial' | 'quarantined';

export interface RawInput {
  bytes: Buffer;
  /** File name or a description of the mail message, shown in errors and the dashboard. */
  name: string;
  source: InputSource;
  /** Where it came from: `{ path }` for files, `{ mailbox, uid, uidValidity }` for IMAP. */
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

const SELECT_CONTENT = 'SELECT content_encoding, content FROM raw_inputs WHERE id = $1';

export function sha256(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
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
  const digest = sha256(input.bytes);
  const compress = input.bytes.length > COMPRESS_ABOVE_BYTES && !isCompressed(input.bytes);
  const content = compress ? gzipSync(input.bytes, { level: 1 }) : input.bytes;
  const origin = JSON.stringify(input.origin);

  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const inserted = await client.query<{ id: number; status: RawInputStatus }>(INSERT_RAW_INPUT, [
      digest,
      input.bytes.length,
      compress ? 'gzip' : 'identity',
      content,
      input.name,
      input.source,
      origin,
    ]);
    let row = inserted.rows[0];
    const existed = !row;
    if (!row) {
      const found = await client.query<{ id: number; status: RawInputStatus }>(FIND_RAW_INPUT, [digest]);
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

/** Loads a stored input's original bytes. */
export async function loadRawContent(db: pg.Pool | pg.PoolClient, id: number): Promise<Buffer> {
  const { rows } = await db.query<{ content_encoding: string; content: Buffer }>(SELECT_CONTENT, [id]);
  if (rows.length === 0) throw new Error(`Raw input ${id} not found`);
  const { content_encoding: encoding, content } = rows[0];
  return encoding === 'gzip' ? gunzipSync(content) : content;
}

/**
 * Locks a pending input for processing in the caller's transaction. Returns null when another
 * process holds it (SKIP LOCKED), or the status when it is no longer pending.
 */
export async function claimRawInput(
  client: pg.PoolClient,
  id: number,
): Promise<{ status: RawInputStatus } | null> {
  const { rows } = await client.query<{ status: RawInputStatus }>(
    'SELECT status FROM raw_inputs WHERE id = $1 FOR UPDATE SKIP LOCKED',
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
            attempts = attempts + 1, processed_at = now()
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

/** Puts a processed input back to pending so that `reprocess` reads it again. */
export async function reopenRawInputs(pool: pg.Pool, statuses: RawInputStatus[]): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    `UPDATE raw_inputs SET status = 'pending' WHERE status = ANY($1) RETURNING id`,
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
