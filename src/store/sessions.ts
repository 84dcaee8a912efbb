import type pg from 'pg';

import type { UserRole } from './users.js';

export interface SessionUser {
  userId: number;
  username: string;
  role: UserRole;
  mustChangePassword: boolean;
  csrfToken: string;
  lastSeenAt: Date;
  createdAt: Date;
}

const INSERT_SESSION = `
  INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at, ip, user_agent)
  VALUES ($1, $2, $3, $4, $5, $6)`;

const FIND_SESSION = `
  SELECT s.user_id, u.username, u.role, u.must_change_password, s.csrf_token,
         s.last_seen_at, s.created_at
    FROM sessions s
    JOIN users u ON u.id = s.user_id
   WHERE s.id_hash = $1 AND s.expires_at > now()`;

// The idle timeout slides with use but never past the absolute limit.
const TOUCH_SESSION = `
  UPDATE sessions
     SET last_seen_at = now(),
         expires_at = least(now() + $2::interval, created_at + $3::interval)
   WHERE id_hash = $1`;

const DELETE_SESSION = 'DELETE FROM sessions WHERE id_hash = $1';

const DELETE_USER_SESSIONS = 'DELETE FROM sessions WHERE user_id = $1';

const DELETE_OTHER_USER_SESSIONS = 'DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2';

const DELETE_EXPIRED_SESSIONS = 'DELETE FROM sessions WHERE expires_at <= now()';

interface SessionRow {
  user_id: number;
  username: string;
  role: UserRole;
  must_change_password: boolean;
  csrf_token: string;
  last_seen_at: Date;
  created_at: Date;
}

/** Inserts a session under the SHA-256 of its cookie value. */
export async function saveSession(
  pool: pg.Pool,
  session: {
    idHash: Buffer;
    userId: number;
    csrfToken: string;
    expiresAt: Date;
    ip: string | null;
    userAgent: string | null;
  },
): Promise<void> {
  await pool.query(INSERT_SESSION, [
    session.idHash,
    session.userId,
    session.csrfToken,
    session.expiresAt,
    session.ip,
    session.userAgent,
  ]);
}

/** Finds an unexpired session with its user; null when unknown, expired or logged out. */
export async function findSession(pool: pg.Pool, idHash: Buffer): Promise<SessionUser | null> {
  const { rows } = await pool.query<SessionRow>(FIND_SESSION, [idHash]);
  const row = rows[0];
  if (!row) return null;
  return {
    userId: row.user_id,
    username: row.username,
    role: row.role,
    mustChangePassword: row.must_change_password,
    csrfToken: row.csrf_token,
    lastSeenAt: row.last_seen_at,
    createdAt: row.created_at,
  };
}

/** Extends a session's idle timeout, capped at its absolute lifetime (both in seconds). */
export async function touchSession(
  pool: pg.Pool,
  idHash: Buffer,
  idleSeconds: number,
  maxAgeSeconds: number,
): Promise<void> {
  await pool.query(TOUCH_SESSION, [idHash, `${idleSeconds} seconds`, `${maxAgeSeconds} seconds`]);
}

export async function deleteSession(pool: pg.Pool, idHash: Buffer): Promise<void> {
  await pool.query(DELETE_SESSION, [idHash]);
}

/** Deletes every session of a user ("log out everywhere"); returns how many there were. */
export async function deleteUserSessions(pool: pg.Pool, userId: number): Promise<number> {
  const result = await pool.query(DELETE_USER_SESSIONS, [userId]);
  return result.rowCount ?? 0;
}

/** Deletes a user's sessions except the one given, after a password change. */
export async function deleteOtherUserSessions(
  pool: pg.Pool,
  userId: number,
  keepIdHash: Buffer,
): Promise<number> {
  const result = await pool.query(DELETE_OTHER_USER_SESSIONS, [userId, keepIdHash]);
  return result.rowCount ?? 0;
}

export async function deleteExpiredSessions(pool: pg.Pool): Promise<number> {
  const result = await pool.query(DELETE_EXPIRED_SESSIONS);
  return result.rowCount ?? 0;
}
