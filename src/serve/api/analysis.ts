import { Router, type RequestHandler } from 'express';

import { HttpError } from '../errors.js';

/**
 * The analysis part (service attribution, recommendations, the what-if simulator) plugs in
 * through `AppDependencies.analysis`. When it provides `router`, an express Router, that router
 * is mounted behind login ahead of the placeholders below, which answer 501 until then.
 */
export interface AnalysisHooks {
  router?: RequestHandler;
}

const FEATURES: Record<string, string> = {
  '/api/services': 'Service attribution',
  '/api/services.csv': 'Service attribution',
  '/api/recommendations': 'Recommendations',
  '/api/recommendations.csv': 'Recommendations',
  '/api/whatif': 'The what-if policy simulator',
};

export function analysisRoutes(analysis: unknown): Router {
  const router = Router();
  const hooks = analysis as AnalysisHooks | undefined;
  if (typeof hooks?.router === 'function') router.use(hooks.router);

  for (const [path, feature] of Object.entries(FEATURES)) {
    router.all(path, () => {
      throw new HttpError(501, 'not-available', `${feature} is not available yet`);
    });
  }
  return router;
}
