import { Router, type Request, type RequestHandler } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';

import { getAuth } from './auth/context.js';
import { HttpError } from './errors.js';
import { renderMetrics, type RequestCounter } from './metrics.js';

const READY_TIMEOUT_MS = 2000;

async function pingDatabase(pool: pg.Pool): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([pool.query('SELECT 1'), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Serves `/healthz` (the process runs) and `/readyz` (the database responds), open to all. */
export function healthRoutes(pool: pg.Pool, log: Logger): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    try {
      await pingDatabase(pool);
      res.json({ status: 'ready' });
    } catch (error) {
      log.warn({ err: error }, 'Readiness check: database not reachable');
      res.status(503).json({
        error: {
          code: 'database-unavailable',
          message: `Database not reachable: ${(error as Error).message}`,
        },
      });
    }
  });

  return router;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

/**
 * Tells whether a request comes straight from this machine: a loopback socket and no proxy
 * headers. A reverse proxy on the same host also connects from loopback, but it adds
 * X-Forwarded-For or Forwarded, and those requests must log in like any other.
 */
function isLocalRequest(req: Request): boolean {
  const proxied = req.get('x-forwarded-for') !== undefined || req.get('forwarded') !== undefined;
  return isLoopback(req.socket.remoteAddress) && !proxied;
}

/**
 * Serves `/metrics` in the Prometheus text format. Open to scrapers on the same machine; from
 * anywhere else it needs an API token (any role) or a login. A local scrape needs no database
 * read before the metrics themselves, so that it still reports `dmarc_lens_database_up 0`.
 */
export function metricsRoutes(
  pool: pg.Pool,
  counter: RequestCounter,
  log: Logger,
  authenticate: RequestHandler,
): Router {
  const router = Router();
  const authenticateRemote: RequestHandler = (req, res, next) =>
    isLocalRequest(req) ? next() : authenticate(req, res, next);

  router.get('/metrics', authenticateRemote, async (req, res) => {
    if (!getAuth(res) && !isLocalRequest(req)) {
      throw new HttpError(
        401,
        'unauthenticated',
        'Send an API token to read /metrics from another host',
      );
    }
    const text = await renderMetrics(pool, counter, log);
    res.set({
      'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    res.send(text);
  });

  return router;
}
