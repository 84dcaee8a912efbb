import express from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';

import type { Config } from '../config.js';
import type { IngestContext } from '../ingest/pipeline.js';
import { analysisRoutes } from './api/analysis.js';
import { dashboardRoutes } from './api/dashboard.js';
import { quarantineRoutes } from './api/quarantine.js';
import { reportRoutes } from './api/reports.js';
import { sourceRoutes } from './api/sources.js';
import { adminRoutes } from './auth/admin-routes.js';
import { randomSecret, sessionCookieName } from './auth/context.js';
import { ensureFirstAdmin } from './auth/first-admin.js';
import { authenticate, requireCsrfToken, requireLogin } from './auth/middleware.js';
import { loginRoutes, sessionRoutes } from './auth/routes.js';
import { apiNotFound, errorHandler, HttpError } from './errors.js';
import { healthRoutes, metricsRoutes } from './health.js';
import { observeRequests, RequestCounter } from './metrics.js';
import { publicPageRoutes, viewRoutes } from './pages.js';
import { securityHeaders } from './security-headers.js';

export interface AppDependencies {
  pool: pg.Pool;
  config: Config;
  log: Logger;
  ingest: IngestContext;
  /** Demo mode: no login, and every page says so. */
  demo: boolean;
  /** Attribution and recommendations, when present; see `AnalysisHooks` in api/analysis.ts. */
  analysis?: unknown;
}

const JSON_BODY_LIMIT = '64kb';

/**
 * Builds the HTTP app: health and metrics, the JSON and CSV API, the dashboard, and login.
 * Outside demo mode it also creates the first admin in the background; requests that need a
 * login wait for that to finish.
 */
export function createApp(deps: AppDependencies): express.Express {
  const { pool, config, log } = deps;
  const httpLog = log.child({ component: 'http' });
  const https = config.publicUrl.startsWith('https://');
  const cookieName = sessionCookieName(https);
  const counter = new RequestCounter();

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', config.trustProxy);

  const firstAdminReady = firstAdminGate(deps, httpLog);

  const authOptions = { pool, cookieName, secureCookie: https, demo: deps.demo, log: httpLog };
  const identify = authenticate({
    pool,
    demo: deps.demo,
    cookieName,
    demoCsrfToken: randomSecret(),
  });

  app.use(securityHeaders(https));
  app.use(observeRequests(counter, httpLog));
  app.use(healthRoutes(pool, httpLog));
  app.use(metricsRoutes(pool, counter, httpLog, identify));
  app.use(publicPageRoutes(deps.demo));

  // Uploads carry the report file as the raw body; everything else that has a body is JSON.
  const json = express.json({ limit: JSON_BODY_LIMIT });
  app.use((req, res, next) => (req.path === '/api/upload' ? next() : json(req, res, next)));

  app.use(async (_req, _res, next) => {
    await firstAdminReady();
    next();
  });
  app.use(loginRoutes(authOptions));
  app.use(identify);
  app.use(viewRoutes());

  // API responses carry report data: no browser or proxy may keep a copy.
  app.use('/api', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  app.use('/api', requireLogin, requireCsrfToken);
  app.use(sessionRoutes(authOptions));
  app.use(adminRoutes(pool, httpLog));
  app.use(dashboardRoutes(pool));
  app.use(reportRoutes(pool, config.limits));
  app.use(sourceRoutes(pool));
  app.use(quarantineRoutes(deps.ingest, httpLog));
  app.use(analysisRoutes(deps.analysis));
  app.use('/api', apiNotFound);

  app.use(() => {
    throw new HttpError(404, 'not-found', 'Page not found');
  });
  app.use(errorHandler(httpLog));
  return app;
}

/**
 * Starts creating the first admin and returns a function that waits for it. A failure (the
 * database is down at start) is logged, and the next request tries again, so that the server
 * still comes up and /readyz reports the database.
 */
function firstAdminGate(deps: AppDependencies, log: Logger): () => Promise<void> {
  let created = deps.demo;
  let attempt: Promise<void> | null = null;

  const ready = async (): Promise<void> => {
    if (created) return;
    attempt ??= ensureFirstAdmin(deps.pool, deps.config.adminPassword, log)
      .then(() => {
        created = true;
      })
      .catch((error: unknown) => {
        log.error({ err: error }, 'Creating the first admin user failed; the next request retries');
        throw error;
      })
      .finally(() => {
        attempt = null;
      });
    try {
      await attempt;
    } catch (error) {
      throw new HttpError(
        503,
        'database-unavailable',
        'The database is not reachable; try again shortly',
        {
          cause: error,
        },
      );
    }
  };

  ready().catch(() => {});
  return ready;
}
