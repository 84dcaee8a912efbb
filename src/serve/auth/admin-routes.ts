import { Router } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';

import { listApiTokens, revokeApiToken, saveApiToken } from '../../store/api-tokens.js';
import { deleteUserSessions } from '../../store/sessions.js';
import {
  deleteUser,
  findUserById,
  listUsers,
  saveUser,
  updatePassword,
  updateRole,
  type UserRole,
} from '../../store/users.js';
import { badRequest, HttpError, notFound } from '../errors.js';
import { parseId } from '../query.js';
import { getAuth, randomSecret, sha256 } from './context.js';
import { requireRole } from './middleware.js';
import { checkNewPassword, hashPassword } from './passwords.js';

// API tokens start with this marker, so that secret scanners and people recognise them.
const TOKEN_MARKER = 'dlk_';

function parseRole(value: unknown): UserRole {
  if (value !== 'viewer' && value !== 'admin') {
    throw badRequest(
      'invalid-body',
      `Invalid role ${JSON.stringify(value)}: expected viewer or admin`,
    );
  }
  return value;
}

function parseName(value: unknown, what: string, pattern: RegExp, hint: string): string {
  if (typeof value !== 'string' || !pattern.test(value.trim())) {
    throw badRequest('invalid-body', `Invalid ${what} ${JSON.stringify(value ?? '')}: ${hint}`);
  }
  return value.trim();
}

/** Users and API tokens; every route here needs the admin role. */
export function adminRoutes(pool: pg.Pool, log: Logger): Router {
  const router = Router();
  const admin = requireRole('admin');

  router.get('/api/users', admin, async (_req, res) => {
    res.json({ rows: await listUsers(pool) });
  });

  router.post('/api/users', admin, async (req, res) => {
    const username = parseName(
      req.body?.username,
      'user name',
      /^[A-Za-z0-9._@-]{1,64}$/,
      'expected 1 to 64 letters, digits or . _ @ -',
    );
    const role = parseRole(req.body?.role);
    const problem = checkNewPassword(req.body?.password);
    if (problem) throw badRequest('invalid-password', problem);

    const user = await saveUser(pool, {
      username,
      role,
      passwordHash: await hashPassword(req.body.password),
    });
    if (!user)
      throw new HttpError(409, 'user-exists', `User ${JSON.stringify(username)} already exists`);
    log.info({ username: user.username, role, by: getAuth(res)!.name }, 'User created');
    res.status(201).json(user);
  });

  router.patch('/api/users/:id', admin, async (req, res) => {
    const id = parseId(req.params.id, 'user');
    const existing = await findUserById(pool, id);
    if (!existing) throw notFound(`User ${id} not found`);

    if (req.body?.role !== undefined) {
      const role = parseRole(req.body.role);
      if (!(await updateRole(pool, id, role))) {
        throw new HttpError(
          409,
          'last-admin',
          'The last admin cannot be demoted; make another user admin first',
        );
      }
    }
    if (req.body?.password !== undefined) {
      const problem = checkNewPassword(req.body.password);
      if (problem) throw badRequest('invalid-password', problem);
      // A password set by an admin is known to two people: the user replaces it at next login.
      await updatePassword(pool, id, await hashPassword(req.body.password), true);
      await deleteUserSessions(pool, id);
    }
    log.info({ username: existing.username, by: getAuth(res)!.name }, 'User changed');
    const { passwordHash: _hash, ...user } = (await findUserById(pool, id))!;
    res.json(user);
  });

  router.delete('/api/users/:id', admin, async (req, res) => {
    const id = parseId(req.params.id, 'user');
    const existing = await findUserById(pool, id);
    if (!existing) throw notFound(`User ${id} not found`);
    if (!(await deleteUser(pool, id))) {
      throw new HttpError(409, 'last-admin', 'The last admin cannot be deleted');
    }
    log.info({ username: existing.username, by: getAuth(res)!.name }, 'User deleted');
    res.json({ deleted: true });
  });

  router.get('/api/tokens', admin, async (_req, res) => {
    res.json({ rows: await listApiTokens(pool) });
  });

  router.post('/api/tokens', admin, async (req, res) => {
    const name = parseName(
      req.body?.name,
      'token name',
      /^[^\u0000-\u001f]{1,100}$/,
      'expected 1 to 100 characters',
    );
    const role = parseRole(req.body?.role ?? 'viewer');
    const token = `${TOKEN_MARKER}${randomSecret()}`;
    const id = await saveApiToken(pool, {
      name,
      role,
      tokenHash: sha256(token),
      tokenPrefix: token.slice(0, TOKEN_MARKER.length + 6),
      createdBy: getAuth(res)!.userId,
    });
    log.info({ tokenId: id, name, role, by: getAuth(res)!.name }, 'API token created');
    // The only time the token itself leaves the server: the database keeps its hash.
    res.status(201).json({ id, name, role, token });
  });

  router.post('/api/tokens/:id/revoke', admin, async (req, res) => {
    const id = parseId(req.params.id, 'token');
    if (!(await revokeApiToken(pool, id))) throw notFound(`Active API token ${id} not found`);
    log.info({ tokenId: id, by: getAuth(res)!.name }, 'API token revoked');
    res.json({ revoked: true });
  });

  return router;
}
