import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Response } from 'express';

import { getAuth } from './auth/context.js';

// web/ sits two levels above both src/serve/ and dist/serve/.
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

// chart.js's package exports do not list the UMD build, so it is found next to the main file.
const CHART_JS = path.join(
  path.dirname(createRequire(import.meta.url).resolve('chart.js')),
  'chart.umd.js',
);

/** The dashboard's views; each is one URL that can be shared, served by the same page. */
export const VIEW_PATHS = [
  '/',
  '/reports',
  '/reports/:id',
  '/records',
  '/sources',
  '/services',
  '/recommendations',
  '/whatif',
  '/quarantine',
  '/settings',
];

// Revalidated on every load, so that an upgrade never runs new pages with old scripts.
const STATIC_OPTIONS = { index: false, maxAge: 0, fallthrough: false } as const;

function sendPage(res: Response, file: string): void {
  res.set('Cache-Control', 'no-store');
  res.sendFile(path.join(WEB_DIR, file));
}

/** Scripts, styles, chart.js and the login page: open to everyone, since they carry no data. */
export function publicPageRoutes(demo: boolean): Router {
  const router = Router();
  router.use('/css', express.static(path.join(WEB_DIR, 'css'), STATIC_OPTIONS));
  router.use('/js', express.static(path.join(WEB_DIR, 'js'), STATIC_OPTIONS));
  router.get('/vendor/chart.umd.js', (_req, res) => {
    res.set('Cache-Control', 'no-cache');
    res.sendFile(CHART_JS);
  });
  router.get('/favicon.svg', (_req, res) => {
    res.sendFile(path.join(WEB_DIR, 'favicon.svg'));
  });
  router.get('/login', (_req, res) => {
    if (demo) {
      res.redirect(303, '/');
      return;
    }
    sendPage(res, 'login.html');
  });
  return router;
}

/**
 * Serves the dashboard views. Without a login they redirect to the login page, which returns
 * to the same URL afterwards. A one-time password that is still to be changed also leads there.
 */
export function viewRoutes(): Router {
  const router = Router();
  router.get(VIEW_PATHS, (req, res) => {
    const auth = getAuth(res);
    if (!auth || auth.mustChangePassword) {
      res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
      return;
    }
    sendPage(res, 'index.html');
  });
  return router;
}
