import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createApp } from '../../src/serve/app.js';
import { LOGIN_LIMITS } from '../../src/serve/auth/login-throttle.js';
import { postgresAvailable, silentLog } from '../helpers/database.js';
import {
  ADMIN_PASSWORD,
  ingestFixture,
  logIn,
  sessionHeaders,
  startTestServer,
  type Session,
  type TestServer,
} from './harness.js';

const available = await postgresAvailable();

// Paths that respond without a login: health, the login page and the static files it needs.
const OPEN_PATHS = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /login',
  'POST /api/auth/login',
  'GET /vendor/chart.umd.js',
  'GET /favicon.svg',
]);

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/**
 * Lists every route the app registers, read from its router, so that a route added later is
 * covered by the checks below without editing them.
 */
function listRoutes(app: ReturnType<typeof createApp>): Array<{ method: string; path: string }> {
  const routes: Array<{ method: string; path: string }> = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        const methods = Object.keys(layer.route.methods).filter((method) => method !== '_all');
        for (const path of paths) {
          for (const method of methods.length > 0 ? methods : ['get', 'post']) {
            routes.push({ method: method.toUpperCase(), path: path.replace(/:id/g, '1') });
          }
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return routes;
}

async function createUser(server: TestServer, admin: Session, username: string, role: string) {
  const response = await fetch(`${server.baseUrl}/api/users`, {
    method: 'POST',
    headers: { ...sessionHeaders(admin), 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `${username}-password-123`, role }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: number };
}

async function createToken(server: TestServer, admin: Session, name: string, role: string) {
  const response = await fetch(`${server.baseUrl}/api/tokens`, {
    method: 'POST',
    headers: { ...sessionHeaders(admin), 'content-type': 'application/json' },
    body: JSON.stringify({ name, role }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: number; token: string };
}

describe.skipIf(!available)('access control on PostgreSQL', () => {
  let server: TestServer;
  let admin: Session;
  let quarantinedId: number;

  beforeAll(async () => {
    server = await startTestServer('postgres');
    await ingestFixture(server.runtime, 'rfc7489-google.xml');
    quarantinedId = (await ingestFixture(server.runtime, 'truncated.xml')).rawInputId;
    admin = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
  });

  afterAll(async () => {
    await server?.close();
  });

  function request(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ) {
    return fetch(`${server.baseUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body,
    });
  }

  it('rejects every route without a login', async () => {
    const app = createApp({
      pool: server.runtime.db.pool,
      config: server.runtime.config,
      log: silentLog,
      ingest: server.runtime.ingest,
      demo: false,
    });
    const routes = listRoutes(app);
    expect(routes.length).toBeGreaterThan(30);

    for (const { method, path } of routes) {
      if (OPEN_PATHS.has(`${method} ${path}`)) continue;
      // /metrics is open on loopback; a proxy header makes the request count as remote.
      const headers: Record<string, string> =
        path === '/metrics' ? { 'x-forwarded-for': '203.0.113.7' } : {};
      const response = await request(method, path, headers, method === 'GET' ? undefined : '{}');
      const label = `${method} ${path}`;
      if (path.startsWith('/api/') || path === '/metrics') {
        expect(response.status, label).toBe(401);
      } else {
        expect(response.status, label).toBe(303);
        expect(response.headers.get('location'), label).toBe(
          `/login?next=${encodeURIComponent(path)}`,
        );
      }
    }
  });

  it('serves the login page and assets openly', async () => {
    for (const path of [
      '/healthz',
      '/readyz',
      '/login',
      '/css/app.css',
      '/js/main.js',
      '/vendor/chart.umd.js',
    ]) {
      const response = await request('GET', path);
      expect(response.status, path).toBe(200);
    }
  });

  it('sets the session cookie safely', async () => {
    const response = await request(
      'POST',
      '/api/auth/login',
      {},
      JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    );
    const cookie = response.headers.get('set-cookie')!;

    expect(cookie).toMatch(/^dmarc_lens_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).not.toContain('Secure');
  });

  it('stores only the hash of the session', async () => {
    const { rows } = await server.runtime.db.pool.query('SELECT id_hash FROM sessions');
    const cookieValue = admin.cookie.split('=')[1];

    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.id_hash.toString('base64url')).not.toBe(cookieValue);
  });

  it('sends security headers with a strict CSP', async () => {
    const response = await request('GET', '/login');
    const csp = response.headers.get('content-security-policy')!;

    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it('rejects wrong passwords and unknown users alike', async () => {
    const wrong = await request(
      'POST',
      '/api/auth/login',
      {},
      JSON.stringify({ username: 'admin', password: 'nope' }),
    );
    const unknown = await request(
      'POST',
      '/api/auth/login',
      {},
      JSON.stringify({ username: 'ghost', password: 'nope' }),
    );

    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(await wrong.json()).toEqual(await unknown.json());
  });

  it('rejects a login posted as a form or from another site', async () => {
    const form = await fetch(`${server.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `username=admin&password=${ADMIN_PASSWORD}`,
    });
    const crossSite = await request(
      'POST',
      '/api/auth/login',
      { origin: 'https://evil.example' },
      JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    );

    expect(form.status).toBe(415);
    expect(crossSite.status).toBe(403);
  });

  it('rejects state changes without the CSRF token', async () => {
    const path = `/api/quarantine/${quarantinedId}/reprocess`;
    const missing = await request('POST', path, sessionHeaders(admin, false));
    const wrong = await request('POST', path, {
      ...sessionHeaders(admin, false),
      'x-csrf-token': 'forged',
    });
    const other = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
    const foreignToken = await request('POST', path, {
      cookie: admin.cookie,
      'x-csrf-token': other.csrfToken,
    });
    const valid = await request('POST', path, sessionHeaders(admin));

    expect(missing.status).toBe(403);
    expect((await missing.json()).error.code).toBe('csrf-token-invalid');
    expect(wrong.status).toBe(403);
    expect(foreignToken.status).toBe(403);
    expect(valid.status).toBe(200);
  });

  it('checks CSRF on every state-changing route', async () => {
    const routes = listRoutes(
      createApp({
        pool: server.runtime.db.pool,
        config: server.runtime.config,
        log: silentLog,
        ingest: server.runtime.ingest,
        demo: false,
      }),
    ).filter(
      ({ method, path }) =>
        method !== 'GET' && path.startsWith('/api/') && path !== '/api/auth/login',
    );
    expect(routes.length).toBeGreaterThan(8);

    for (const { method, path } of routes) {
      const response = await request(method, path, sessionHeaders(admin, false), '{}');
      expect(response.status, `${method} ${path}`).toBe(403);
    }
  });

  it('lets a viewer read but change nothing', async () => {
    const viewerUser = await createUser(server, admin, 'viola', 'viewer');
    const viewer = await logIn(server.baseUrl, 'viola', 'viola-password-123');
    const headers = sessionHeaders(viewer);

    expect((await request('GET', '/api/summary', headers)).status).toBe(200);
    expect((await request('GET', '/api/reports.csv', headers)).status).toBe(200);

    const changes: Array<[string, string]> = [
      ['POST', '/api/upload'],
      ['POST', '/api/quarantine/reprocess'],
      ['POST', `/api/quarantine/${quarantinedId}/reprocess`],
      ['POST', '/api/users'],
      ['PATCH', `/api/users/${viewerUser.id}`],
      ['DELETE', `/api/users/${viewerUser.id}`],
      ['POST', '/api/tokens'],
      ['POST', '/api/tokens/1/revoke'],
      ['GET', '/api/users'],
      ['GET', '/api/tokens'],
    ];
    for (const [method, path] of changes) {
      const body = JSON.stringify({
        username: 'x',
        password: 'long-enough-password',
        role: 'admin',
        name: 'x',
      });
      const response = await request(method, path, headers, method === 'GET' ? undefined : body);
      expect(response.status, `${method} ${path}`).toBe(403);
      expect((await response.json()).error.code, `${method} ${path}`).toBe('forbidden');
    }
    const { rows } = await server.runtime.db.pool.query(
      `SELECT role FROM users WHERE username = 'viola'`,
    );
    expect(rows[0].role).toBe('viewer');
  });

  it('lets scripts use tokens until revoked', async () => {
    const { id, token } = await createToken(server, admin, 'nightly export', 'viewer');
    const bearer = { authorization: `Bearer ${token}` };

    const before = await request('GET', '/api/reports.csv', bearer);
    expect(before.status).toBe(200);
    expect((await request('POST', '/api/quarantine/reprocess', bearer)).status).toBe(403);

    const stored = await server.runtime.db.pool.query(
      'SELECT token_hash, token_prefix FROM api_tokens WHERE id = $1',
      [id],
    );
    expect(stored.rows[0].token_hash).toHaveLength(32);
    expect(token.startsWith(stored.rows[0].token_prefix)).toBe(true);
    expect(stored.rows[0].token_prefix.length).toBeLessThan(12);

    const revoke = await request('POST', `/api/tokens/${id}/revoke`, sessionHeaders(admin));
    expect(revoke.status).toBe(200);
    const after = await request('GET', '/api/reports', bearer);
    expect(after.status).toBe(401);
    expect((await after.json()).error.code).toBe('invalid-token');
  });

  it('lets an admin token change things without CSRF', async () => {
    const { token } = await createToken(server, admin, 'uploader', 'admin');
    const response = await fetch(`${server.baseUrl}/api/upload?name=token-upload.xml`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: 'garbage',
    });

    expect(response.status).toBe(422);
  });

  it('rejects malformed and unknown bearer tokens', async () => {
    const malformed = await request('GET', '/api/summary', {
      authorization: 'Basic YWRtaW46YWRtaW4=',
    });
    const unknown = await request('GET', '/api/summary', { authorization: 'Bearer dlk_unknown' });

    expect(malformed.status).toBe(401);
    expect(unknown.status).toBe(401);
  });

  it('logs out one session', async () => {
    const session = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
    const logout = await request('POST', '/api/auth/logout', sessionHeaders(session));

    expect(logout.status).toBe(200);
    expect(logout.headers.get('set-cookie')).toMatch(/dmarc_lens_session=;/);
    expect((await request('GET', '/api/summary', sessionHeaders(session))).status).toBe(401);
    expect((await request('GET', '/api/summary', sessionHeaders(admin))).status).toBe(200);
  });

  it('logs out everywhere', async () => {
    await createUser(server, admin, 'wanda', 'viewer');
    const first = await logIn(server.baseUrl, 'wanda', 'wanda-password-123');
    const second = await logIn(server.baseUrl, 'wanda', 'wanda-password-123');
    const response = await request('POST', '/api/auth/logout-everywhere', sessionHeaders(first));

    expect(response.status).toBe(200);
    expect((await response.json()).sessions).toBe(2);
    expect((await request('GET', '/api/summary', sessionHeaders(first))).status).toBe(401);
    expect((await request('GET', '/api/summary', sessionHeaders(second))).status).toBe(401);
  });

  it('expires sessions in the database', async () => {
    const session = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
    await server.runtime.db.pool.query(
      `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE csrf_token = $1`,
      [session.csrfToken],
    );

    expect((await request('GET', '/api/summary', sessionHeaders(session))).status).toBe(401);
  });

  it('changes a password and closes other sessions', async () => {
    await createUser(server, admin, 'paul', 'viewer');
    const first = await logIn(server.baseUrl, 'paul', 'paul-password-123');
    const second = await logIn(server.baseUrl, 'paul', 'paul-password-123');
    const change = (current: string, next: string) =>
      request(
        'POST',
        '/api/auth/password',
        sessionHeaders(first),
        JSON.stringify({ currentPassword: current, newPassword: next }),
      );

    expect((await change('wrong-password', 'a-new-password-456')).status).toBe(403);
    expect((await change('paul-password-123', 'short')).status).toBe(400);
    expect((await change('paul-password-123', 'a-new-password-456')).status).toBe(200);
    expect((await request('GET', '/api/summary', sessionHeaders(first))).status).toBe(200);
    expect((await request('GET', '/api/summary', sessionHeaders(second))).status).toBe(401);
    await expect(logIn(server.baseUrl, 'paul', 'paul-password-123')).rejects.toThrow(/401/);
    await logIn(server.baseUrl, 'paul', 'a-new-password-456');
  });

  it('makes a reset password one-time', async () => {
    const user = await createUser(server, admin, 'rita', 'viewer');
    const before = await logIn(server.baseUrl, 'rita', 'rita-password-123');
    const reset = await request(
      'PATCH',
      `/api/users/${user.id}`,
      sessionHeaders(admin),
      JSON.stringify({ password: 'set-by-the-admin-1' }),
    );

    expect(reset.status).toBe(200);
    expect((await request('GET', '/api/summary', sessionHeaders(before))).status).toBe(401);
    const after = await logIn(server.baseUrl, 'rita', 'set-by-the-admin-1');
    const blocked = await request('GET', '/api/summary', sessionHeaders(after));
    expect(blocked.status).toBe(403);
    expect((await blocked.json()).error.code).toBe('password-change-required');
  });

  it('keeps API responses out of caches', async () => {
    const response = await request('GET', '/api/summary', sessionHeaders(admin));

    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('keeps the last admin', async () => {
    const { rows } = await server.runtime.db.pool.query(
      `SELECT id FROM users WHERE username = 'admin'`,
    );
    const path = `/api/users/${rows[0].id}`;

    const demote = await request(
      'PATCH',
      path,
      sessionHeaders(admin),
      JSON.stringify({ role: 'viewer' }),
    );
    const remove = await request('DELETE', path, sessionHeaders(admin));

    expect(demote.status).toBe(409);
    expect(remove.status).toBe(409);
  });

  it('stores passwords as salted scrypt hashes', async () => {
    const { rows } = await server.runtime.db.pool.query(
      `SELECT password_hash FROM users ORDER BY id LIMIT 2`,
    );

    expect(rows[0].password_hash).toMatch(
      /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
    );
    expect(rows[0].password_hash).not.toContain(ADMIN_PASSWORD);
    expect(rows[0].password_hash.split('$')[4]).not.toBe(rows[1].password_hash.split('$')[4]);
  });
});

describe.skipIf(!available)('login rate limit on PostgreSQL', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer('postgres');
  });

  afterAll(async () => {
    await server?.close();
  });

  const attempt = (username: string, password: string) =>
    fetch(`${server.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });

  it('blocks a user name after repeated failures', async () => {
    for (let index = 0; index < LOGIN_LIMITS.perUsername; index++) {
      expect((await attempt('admin', `guess-${index}`)).status).toBe(401);
    }
    const blocked = await attempt('admin', ADMIN_PASSWORD);

    expect(blocked.status).toBe(429);
    expect((await blocked.json()).error.code).toBe('too-many-login-attempts');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(60);
  });

  it('blocks an address trying many user names', async () => {
    const { rows } = await server.runtime.db.pool.query(
      'SELECT count(*)::int AS n FROM login_failures',
    );
    const remaining = LOGIN_LIMITS.perAddress - rows[0].n;
    for (let index = 0; index < remaining; index++) {
      expect((await attempt(`user-${index}`, 'wrong')).status).toBe(401);
    }

    expect((await attempt('someone-else', 'wrong')).status).toBe(429);
  });

  it('lifts the block after the window', async () => {
    await server.runtime.db.pool.query(
      `UPDATE login_failures SET failed_at = failed_at - $1::interval`,
      [`${LOGIN_LIMITS.windowSeconds + 1} seconds`],
    );

    expect((await attempt('admin', ADMIN_PASSWORD)).status).toBe(200);
  });
});

describe.skipIf(!available)('first admin and modes on PostgreSQL', () => {
  it('prints a one-time password that must be replaced', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const server = await startTestServer('postgres', { oneTimePassword: true, log });
    try {
      // The first admin is created in the background; the first request waits for it.
      expect((await fetch(`${server.baseUrl}/api/summary`)).status).toBe(401);
      const messages = lines.map((line) => JSON.parse(line).msg as string);
      const created = messages.filter((message) => message.includes('one-time password'));
      expect(created).toHaveLength(1);
      const password = /one-time password (\S+)/.exec(created[0])![1];

      const session = await logIn(server.baseUrl, 'admin', password);
      const blocked = await fetch(`${server.baseUrl}/api/summary`, {
        headers: sessionHeaders(session),
      });
      expect(blocked.status).toBe(403);
      expect((await blocked.json()).error.code).toBe('password-change-required');
      const page = await fetch(`${server.baseUrl}/`, {
        headers: sessionHeaders(session),
        redirect: 'manual',
      });
      expect(page.status).toBe(303);

      const change = await fetch(`${server.baseUrl}/api/auth/password`, {
        method: 'POST',
        headers: { ...sessionHeaders(session), 'content-type': 'application/json' },
        body: JSON.stringify({ currentPassword: password, newPassword: 'my-own-admin-password' }),
      });
      expect(change.status).toBe(200);
      expect(
        (await fetch(`${server.baseUrl}/api/summary`, { headers: sessionHeaders(session) })).status,
      ).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('marks the cookie Secure behind https', async () => {
    const server = await startTestServer('postgres', {
      env: { PUBLIC_URL: 'https://dmarc.example.com' },
    });
    try {
      const response = await fetch(`${server.baseUrl}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
      });
      const cookie = response.headers.get('set-cookie')!;

      expect(cookie).toMatch(/^__Host-dmarc_lens_session=/);
      expect(cookie).toContain('Secure');
      expect(response.headers.get('strict-transport-security')).toContain('max-age=');
    } finally {
      await server.close();
    }
  });

  it('opens everything in demo mode, CSRF included', async () => {
    const server = await startTestServer('postgres', { demo: true });
    try {
      const session = await (await fetch(`${server.baseUrl}/api/auth/session`)).json();
      expect(session.demo).toBe(true);
      expect((await fetch(`${server.baseUrl}/api/summary`)).status).toBe(200);
      expect((await fetch(`${server.baseUrl}/`)).status).toBe(200);
      const login = await fetch(`${server.baseUrl}/login`, { redirect: 'manual' });
      expect(login.status).toBe(303);

      const withoutToken = await fetch(`${server.baseUrl}/api/quarantine/reprocess`, {
        method: 'POST',
      });
      const withToken = await fetch(`${server.baseUrl}/api/quarantine/reprocess`, {
        method: 'POST',
        headers: { 'x-csrf-token': session.csrfToken },
      });
      expect(withoutToken.status).toBe(403);
      expect(withToken.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
