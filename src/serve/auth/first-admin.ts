import type pg from 'pg';
import type { Logger } from 'pino';

import { saveFirstAdmin } from '../../store/users.js';
import { generatePassword, hashPassword } from './passwords.js';

export const FIRST_ADMIN_NAME = 'admin';

/**
 * Creates the user `admin` when no admin exists: with ADMIN_PASSWORD when it is set, or else
 * with a random one-time password written once to the log, which must be replaced at the
 * first login. Deleting every admin and restarting creates a new one, the recovery path when
 * all admin passwords are lost.
 */
export async function ensureFirstAdmin(
  pool: pg.Pool,
  adminPassword: string | undefined,
  log: Logger,
): Promise<void> {
  const password = adminPassword ?? generatePassword();
  const created = await saveFirstAdmin(
    pool,
    FIRST_ADMIN_NAME,
    await hashPassword(password),
    !adminPassword,
  );
  if (!created) return;

  if (adminPassword) {
    log.info({ username: FIRST_ADMIN_NAME }, 'Created the admin user with ADMIN_PASSWORD');
    return;
  }
  // The message carries the password on purpose: it is the only copy, and the dashboard asks
  // for a new one right after the first login with it.
  log.warn(
    { username: FIRST_ADMIN_NAME },
    `Created user "${FIRST_ADMIN_NAME}" with the one-time password ${password} ` +
      '(log in and set a new one; set ADMIN_PASSWORD before the first start to choose it instead)',
  );
}
