import type pg from 'pg';

const INSERT_FAILURE = 'INSERT INTO login_failures (ip, username) VALUES ($1, $2)';

const COUNT_RECENT_FAILURES = `
  SELECT count(*) FILTER (WHERE ip = $1)::int AS by_ip,
         count(*) FILTER (WHERE username = $2)::int AS by_username,
         min(failed_at) FILTER (WHERE ip = $1) AS oldest_by_ip,
         min(failed_at) FILTER (WHERE username = $2) AS oldest_by_username
    FROM login_failures
   WHERE (ip = $1 OR username = $2) AND failed_at > now() - $3::interval`;

const DELETE_USERNAME_FAILURES = 'DELETE FROM login_failures WHERE username = $1';

const DELETE_OLD_FAILURES = `DELETE FROM login_failures WHERE failed_at <= now() - $1::interval`;

export interface RecentLoginFailures {
  byIp: number;
  byUsername: number;
  /** The oldest failure still counted, per key: the limit lifts a window after it. */
  oldestByIp: Date | null;
  oldestByUsername: Date | null;
}

/** Counts the failed logins of the last `windowSeconds` from an address and for a user name. */
export async function countRecentLoginFailures(
  pool: pg.Pool,
  ip: string,
  username: string,
  windowSeconds: number,
): Promise<RecentLoginFailures> {
  const { rows } = await pool.query(COUNT_RECENT_FAILURES, [
    ip,
    username,
    `${windowSeconds} seconds`,
  ]);
  return {
    byIp: rows[0].by_ip,
    byUsername: rows[0].by_username,
    oldestByIp: rows[0].oldest_by_ip,
    oldestByUsername: rows[0].oldest_by_username,
  };
}

export async function saveLoginFailure(pool: pg.Pool, ip: string, username: string): Promise<void> {
  await pool.query(INSERT_FAILURE, [ip, username]);
}

/** Clears a user name's failures after a successful login; the address count stays. */
export async function clearUsernameLoginFailures(pool: pg.Pool, username: string): Promise<void> {
  await pool.query(DELETE_USERNAME_FAILURES, [username]);
}

export async function deleteOldLoginFailures(
  pool: pg.Pool,
  windowSeconds: number,
): Promise<number> {
  const result = await pool.query(DELETE_OLD_FAILURES, [`${windowSeconds} seconds`]);
  return result.rowCount ?? 0;
}
