import { Router, type Request, type Response } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';

import {
  deleteExpiredSessions,
  deleteOtherUserSessions,
  deleteSession,
  deleteUserSessions,
  saveSession,
} from '../../store/sessions.js';
import {
  findUserById,
  findUserByName,
  normalizeUsername,
  updatePassword,
} from '../../store/users.js';
import { badRequest, HttpError } from '../errors.js';
import { clientAddress, getAuth, randomSecret, sha256, type AuthContext } from './context.js';
import { checkLoginAllowed, recordLoginFailure, recordLoginSuccess } from './login-throttle.js';
import { SESSION_LIMITS } from './middleware.js';
import {
  checkNewPassword,
  decoyPasswordHash,
  hashPassword,
  MAX_PASSWORD_LENGTH,
  verifyPassword,
} from './passwords.js';

export interface AuthRouteOptions {
  pool: pg.Pool;
  log: Logger;
  demo: boolean;
  cookieName: string;
  secureCookie: boolean;
}

function stringField(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (typeof value !== 'string' || value === '')
    throw badRequest('invalid-body', `Missing ${name}`);
  return value;
}

function describe(auth: AuthContext, demo: boolean): Record<string, unknown> {
  return {
    demo,
    user: {
      name: auth.name,
      role: auth.role,
      via: auth.via,
      mustChangePassword: auth.mustChangePassword,
    },
    csrfToken: auth.csrfToken,
  };
}

/**
 * Rejects logins posted from another site, which would log the victim into the attacker's
 * account. The dashboard logs in with a JSON body. A cross-site form cannot send one without
 * a CORS preflight, which this server never grants. The Origin check adds a second guard in
 * browsers that send the header.
 */
function checkLoginOrigin(req: Request): void {
  if (!req.is('application/json')) {
    throw new HttpError(415, 'unsupported-media-type', 'Send the login as application/json');
  }
  const origin = req.get('origin');
  if (origin && origin !== 'null') {
    const host = req.get('host');
    let originHost: string | null = null;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = null;
    }
    if (originHost !== host)
      throw new HttpError(403, 'cross-origin-login', 'Login from another site rejected');
  }
}

/** Routes that need no login: the login itself. */
export function loginRoutes(options: AuthRouteOptions): Router {
  const router = Router();
  const { pool, log } = options;

  router.post('/api/auth/login', async (req, res) => {
    if (options.demo) throw new HttpError(409, 'demo-mode', 'Demo mode has no login');
    checkLoginOrigin(req);
    const username = normalizeUsername(stringField(req.body, 'username')).slice(0, 200);
    const password = stringField(req.body, 'password');
    const address = clientAddress(req);

    await checkLoginAllowed(pool, address, username);
    const user =
      password.length <= MAX_PASSWORD_LENGTH ? await findUserByName(pool, username) : null;
    const valid = user
      ? await verifyPassword(password, user.passwordHash)
      : await verifyPassword(password, await decoyPasswordHash()).then(() => false);
    if (!user || !valid) {
      await recordLoginFailure(pool, address, username);
      log.info({ username, address }, 'Login failed');
      throw new HttpError(401, 'invalid-credentials', 'Wrong user name or password');
    }

    await recordLoginSuccess(pool, username);
    await deleteExpiredSessions(pool);
    const cookie = randomSecret();
    const csrfToken = randomSecret();
    await saveSession(pool, {
      idHash: sha256(cookie),
      userId: user.id,
      csrfToken,
      expiresAt: new Date(Date.now() + SESSION_LIMITS.idleSeconds * 1000),
      ip: address,
      userAgent: req.get('user-agent')?.slice(0, 300) ?? null,
    });
    setSessionCookie(res, options, cookie);
    log.info({ username, address }, 'Login');

    const auth: AuthContext = {
      via: 'session',
      userId: user.id,
      name: user.username,
      role: user.role,
      csrfToken,
      sessionIdHash: null,
      mustChangePassword: user.mustChangePassword,
    };
    res.json(describe(auth, false));
  });

  return router;
}

function setSessionCookie(res: Response, options: AuthRouteOptions, value: string): void {
  res.cookie(options.cookieName, value, {
    httpOnly: true,
    sameSite: 'lax',
    secure: options.secureCookie,
    path: '/',
    maxAge: SESSION_LIMITS.maxAgeSeconds * 1000,
  });
}

function clearSessionCookie(res: Response, options: AuthRouteOptions): void {
  res.clearCookie(options.cookieName, {
    httpOnly: true,
    sameSite: 'lax',
    secure: options.secureCookie,
    path: '/',
  });
}

/** Routes for the logged-in user: the session, logout, logout everywhere, password change. */
export function sessionRoutes(options: AuthRouteOptions): Router {
  const router = Router();
  const { pool, log } = options;
  router.get('/api/auth/session', (_req, res) => {
    res.json(describe(getAuth(res)!, options.demo));
  });

  router.post('/api/auth/logout', async (_req, res) => {
    const auth = getAuth(res)!;
    if (auth.sessionIdHash) await deleteSession(pool, auth.sessionIdHash);
    clearSessionCookie(res, options);
    res.json({ loggedOut: true });
  });

  router.post('/api/auth/logout-everywhere', async (_req, res) => {
    const auth = requireSessionUser(res);
    const sessions = await deleteUserSessions(pool, auth.userId!);
    clearSessionCookie(res, options);
    log.info({ username: auth.name, sessions }, 'Logged out everywhere');
    res.json({ loggedOut: true, sessions });
  });

  router.post('/api/auth/password', async (req, res) => {
    const auth = requireSessionUser(res);
    const current = stringField(req.body, 'currentPassword');
    const next = (req.body as Record<string, unknown>)?.newPassword;
    const problem = checkNewPassword(next);
    if (problem) throw badRequest('invalid-password', problem);
    if (next === current)
      throw badRequest('invalid-password', 'The new password must differ from the current one');

    const user = await findUserById(pool, auth.userId!);
    if (!user || !(await verifyPassword(current, user.passwordHash))) {
      throw new HttpError(403, 'invalid-credentials', 'The current password is wrong');
    }
    await updatePassword(pool, user.id, await hashPassword(next as string));
    // Other sessions may belong to someone who knew the old password.
    const closed = await deleteOtherUserSessions(pool, user.id, auth.sessionIdHash!);
    log.info({ username: user.username, closedSessions: closed }, 'Password changed');
    res.json({ changed: true, closedSessions: closed });
  });

  return router;
}

function requireSessionUser(res: Response): AuthContext {
  const auth = getAuth(res)!;
  if (auth.via !== 'session' || auth.userId === null) {
    throw new HttpError(
      400,
      'no-session',
      'Only a logged-in user can do this; API tokens and demo mode cannot',
    );
  }
  return auth;
}
