import type pg from 'pg';

import {
  clearUsernameLoginFailures,
  countRecentLoginFailures,
  deleteOldLoginFailures,
  saveLoginFailure,
} from '../../store/login-failures.js';
import { HttpError } from '../errors.js';

/** Failed logins allowed within the window, per client address and per user name. */
export const LOGIN_LIMITS = {
  windowSeconds: 15 * 60,
  perAddress: 20,
  perUsername: 10,
};

/**
 * Rejects a login attempt with 429 when the address or the user name had too many failed
 * logins in the window. The user name limit also stops guessing spread over many addresses,
 * at the price that a flood of wrong passwords locks the real user out for the window.
 * @throws HttpError 429 with a Retry-After header
 */
export async function checkLoginAllowed(
  pool: pg.Pool,
  address: string,
  username: string,
): Promise<void> {
  const failures = await countRecentLoginFailures(
    pool,
    address,
    username,
    LOGIN_LIMITS.windowSeconds,
  );
  const blockedSince: Date[] = [];
  if (failures.byIp >= LOGIN_LIMITS.perAddress && failures.oldestByIp)
    blockedSince.push(failures.oldestByIp);
  if (failures.byUsername >= LOGIN_LIMITS.perUsername && failures.oldestByUsername) {
    blockedSince.push(failures.oldestByUsername);
  }
  if (blockedSince.length === 0) return;

  const liftsAt =
    Math.max(...blockedSince.map((date) => date.getTime())) + LOGIN_LIMITS.windowSeconds * 1000;
  const retryAfter = Math.max(1, Math.ceil((liftsAt - Date.now()) / 1000));
  throw new HttpError(
    429,
    'too-many-login-attempts',
    `Too many failed logins; try again in ${Math.ceil(retryAfter / 60)} minutes`,
    { headers: { 'Retry-After': String(retryAfter) } },
  );
}

export async function recordLoginFailure(
  pool: pg.Pool,
  address: string,
  username: string,
): Promise<void> {
  await saveLoginFailure(pool, address, username);
}

/** Clears the user name's count after a successful login and drops failures older than the window. */
export async function recordLoginSuccess(pool: pg.Pool, username: string): Promise<void> {
  await clearUsernameLoginFailures(pool, username);
  await deleteOldLoginFailures(pool, LOGIN_LIMITS.windowSeconds);
}
