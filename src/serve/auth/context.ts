import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

import type { UserRole } from '../../store/users.js';

/** Who made a request, and how they proved it. */
export interface AuthContext {
  via: 'session' | 'token' | 'demo';
  /** The user behind a session; null for API tokens and demo mode. */
  userId: number | null;
  /** The user name, the token's name, or `demo`. */
  name: string;
  role: UserRole;
  /** The CSRF token bound to the session (or, in demo mode, to the process). */
  csrfToken: string | null;
  sessionIdHash: Buffer | null;
  mustChangePassword: boolean;
}

export function getAuth(res: Response): AuthContext | null {
  return (res.locals.auth as AuthContext | undefined) ?? null;
}

export function setAuth(res: Response, auth: AuthContext | null): void {
  res.locals.auth = auth;
}

export function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** A random URL-safe secret of `bytes` random bytes. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Compares two secrets in constant time. */
export function secretsEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The session cookie's name. Over HTTPS it carries the `__Host-` prefix, with which browsers
 * only accept the cookie when it is Secure, has Path=/ and no Domain, so that a subdomain
 * cannot plant or overwrite it.
 */
export function sessionCookieName(secure: boolean): string {
  return secure ? '__Host-dmarc_lens_session' : 'dmarc_lens_session';
}

/** Reads one cookie from the Cookie header. */
export function readCookie(req: Request, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator === -1) continue;
    if (part.slice(0, separator).trim() !== name) continue;
    const value = part.slice(separator + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return null;
    }
  }
  return null;
}

/** The client's address as the socket sees it, with IPv4-mapped IPv6 written as IPv4. */
export function clientAddress(req: Request): string {
  const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
