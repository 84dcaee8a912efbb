import type pg from 'pg';

import type { UserRole } from './users.js';

export interface ApiToken {
  id: number;
  name: string;
  role: UserRole;
  tokenPrefix: string;
  createdBy: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const INSERT_TOKEN = `
  INSERT INTO api_tokens (name, role, token_hash, token_prefix, created_by)
  VALUES ($1, $2, $3, $4, $5)
  RETURNING id`;

const TOKEN_COLUMNS = `
  t.id, t.name, t.role, t.token_prefix, u.username AS created_by, t.created_at,
  t.last_used_at, t.revoked_at`;

const FIND_ACTIVE_TOKEN = `
  SELECT ${TOKEN_COLUMNS}
    FROM api_tokens t
    LEFT JOIN users u ON u.id = t.created_by
   WHERE t.token_hash = $1 AND t.revoked_at IS NULL`;

const LIST_TOKENS = `
  SELECT ${TOKEN_COLUMNS}
    FROM api_tokens t
    LEFT JOIN users u ON u.id = t.created_by
   ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC`;

// last_used_at is written at most once a minute per token, so that a busy script does not
// turn every read into a write.
const TOUCH_TOKEN = `
  UPDATE api_tokens SET last_used_at = now()
   WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`;

const REVOKE_TOKEN = `
  UPDATE api_tokens SET revoked_at = now()
   WHERE id = $1 AND revoked_at IS NULL
  RETURNING id`;

interface TokenRow {
  id: number;
  name: string;
  role: UserRole;
  token_prefix: string;
  created_by: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

function toToken(row: TokenRow): ApiToken {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    tokenPrefix: row.token_prefix,
    createdBy: row.created_by,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

/** Inserts a token by its SHA-256; returns its id. */
export async function saveApiToken(
  pool: pg.Pool,
  token: {
    name: string;
    role: UserRole;
    tokenHash: Buffer;
    tokenPrefix: string;
    createdBy: number | null;
  },
): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(INSERT_TOKEN, [
    token.name,
    token.role,
    token.tokenHash,
    token.tokenPrefix,
    token.createdBy,
  ]);
  return rows[0].id;
}

/** Finds an unrevoked token by its SHA-256 and records its use. */
export async function findActiveApiToken(
  pool: pg.Pool,
  tokenHash: Buffer,
): Promise<ApiToken | null> {
  const { rows } = await pool.query<TokenRow>(FIND_ACTIVE_TOKEN, [tokenHash]);
  if (!rows[0]) return null;
  await pool.query(TOUCH_TOKEN, [rows[0].id]);
  return toToken(rows[0]);
}

export async function listApiTokens(pool: pg.Pool): Promise<ApiToken[]> {
  const { rows } = await pool.query<TokenRow>(LIST_TOKENS);
  return rows.map(toToken);
}

/** Revokes a token; false when it does not exist or was revoked already. */
export async function revokeApiToken(pool: pg.Pool, id: number): Promise<boolean> {
  const { rows } = await pool.query(REVOKE_TOKEN, [id]);
  return rows.length > 0;
}
