import type { Request, RequestHandler } from 'express';
import type pg from 'pg';

import { findActiveApiToken } from '../../store/api-tokens.js';
import { findSession, touchSession } from '../../store/sessions.js';
import type { UserRole } from '../../store/users.js';
import { HttpError } from '../errors.js';
import { getAuth, readCookie, secretsEqual, setAuth, sha256, type AuthContext } from './context.js';

/** Session lifetimes: the idle timeout slides with use, the absolute limit does not. */
export const SESSION_LIMITS = {
  idleSeconds: 12 * 60 * 60,
  maxAgeSeconds: 7 * 24 * 60 * 60,
  // last_seen_at is written at most this often per session.
  touchEverySeconds: 60,
};

export interface AuthOptions {
  pool: pg.Pool;
  demo: boolean;
  cookieName: string;
  /** The CSRF token of demo mode, random per process. */
  demoCsrfToken: string;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Finds who is calling: an API token in `Authorization: Bearer`, else the session cookie.
 * Sets the context (or null) for the handlers after it; rejecting is left to `requireLogin`.
 * A malformed or unknown bearer token is rejected at once instead of falling back to the
 * cookie, so that a script with a revoked token fails loudly.
 */
export function authenticate(options: AuthOptions): RequestHandler {
  return async (req, res, next) => {
    if (options.demo) {
      setAuth(res, {
        via: 'demo',
        userId: null,
        name: 'demo',
        role: 'admin',
        csrfToken: options.demoCsrfToken,
        sessionIdHash: null,
        mustChangePassword: false,
      });
      next();
      return;
    }

    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      setAuth(res, await authenticateToken(options.pool, authorization));
      next();
      return;
    }

    const cookie = readCookie(req, options.cookieName);
    setAuth(res, cookie ? await authenticateSession(options.pool, cookie) : null);
    next();
  };
}

async function authenticateToken(pool: pg.Pool, authorization: string): Promise<AuthContext> {
  const match = BEARER.exec(authorization);
  if (!match) {
    throw new HttpError(
      401,
      'invalid-token',
      'Invalid Authorization header: expected "Bearer <token>"',
    );
  }
  const token = await findActiveApiToken(pool, sha256(match[1]));
  if (!token) throw new HttpError(401, 'invalid-token', 'Unknown or revoked API token');
  return {
    via: 'token',
    userId: null,
    name: token.name,
    role: token.role,
    csrfToken: null,
    sessionIdHash: null,
    mustChangePassword: false,
  };
}

async function authenticateSession(pool: pg.Pool, cookie: string): Promise<AuthContext | null> {
  const idHash = sha256(cookie);
  const session = await findSession(pool, idHash);
  if (!session) return null;
  if (Date.now() - session.lastSeenAt.getTime() > SESSION_LIMITS.touchEverySeconds * 1000) {
    await touchSession(pool, idHash, SESSION_LIMITS.idleSeconds, SESSION_LIMITS.maxAgeSeconds);
  }
  return {
    via: 'session',
    userId: session.userId,
    name: session.username,
    role: session.role,
    csrfToken: session.csrfToken,
    sessionIdHash: idHash,
    mustChangePassword: session.mustChangePassword,
  };
}

// Paths a user with a one-time password may still use: what it takes to set a new one.
const PASSWORD_CHANGE_PATHS = new Set([
  '/api/auth/session',
  '/api/auth/password',
  '/api/auth/logout',
]);

/** Rejects API requests without a login (401) or with a one-time password still to change (403). */
export const requireLogin: RequestHandler = (req, res, next) => {
  const auth = getAuth(res);
  if (!auth)
    throw new HttpError(401, 'unauthenticated', 'Log in or send an API token to use this endpoint');
  if (auth.mustChangePassword && !PASSWORD_CHANGE_PATHS.has(`${req.baseUrl}${req.path}`)) {
    throw new HttpError(
      403,
      'password-change-required',
      'Set a new password before using the dashboard',
    );
  }
  next();
};

function isSafeMethod(req: Request): boolean {
  return req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
}

/**
 * Rejects state-changing requests that ride on a cookie without the session's CSRF token in
 * the X-CSRF-Token header. A cross-site page can make the browser send the cookie but cannot
 * read the token. Bearer token requests carry no cookie and need no CSRF token.
 */
export const requireCsrfToken: RequestHandler = (req, res, next) => {
  const auth = getAuth(res);
  if (isSafeMethod(req) || !auth || auth.via === 'token') {
    next();
    return;
  }
  const sentToken = req.get('x-csrf-token');
  if (!sentToken || !auth.csrfToken || !secretsEqual(sentToken, auth.csrfToken)) {
    throw new HttpError(
      403,
      'csrf-token-invalid',
      'Missing or invalid X-CSRF-Token header; reload the page',
    );
  }
  next();
};

/** Rejects the request with 403 unless the caller has the role. */
export function requireRole(role: UserRole): RequestHandler {
  return (_req, res, next) => {
    const auth = getAuth(res);
    if (!auth || (role === 'admin' && auth.role !== 'admin')) {
      throw new HttpError(403, 'forbidden', `This action needs the ${role} role`);
    }
    next();
  };
}
