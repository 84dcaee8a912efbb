import { Router } from 'express';
import type pg from 'pg';

import { findSources, SOURCE_SORTS, streamSources } from '../../store/dashboard.js';
import { sendCsv } from '../csv-response.js';
import { parsePageRequest } from '../query.js';
import { SOURCE_CSV } from './columns.js';
import { parseFilterWithService } from './service-filter.js';

// Failing sources first: they are the ones the team has to act on.
const SOURCE_DEFAULT_SORT = { sort: 'dmarc_fail', order: 'desc' } as const;

/** `/api/sources`: sending addresses with volume and pass rate, and its CSV twin. */
export function sourceRoutes(pool: pg.Pool): Router {
  const router = Router();

  router.get('/api/sources', async (req, res) => {
    const filter = parseFilterWithService(req);
    const request = parsePageRequest(req, SOURCE_SORTS, SOURCE_DEFAULT_SORT);
    res.json({ ...(await findSources(pool, filter, request)), filter });
  });

  router.get('/api/sources.csv', async (req, res) => {
    const filter = parseFilterWithService(req);
    const request = parsePageRequest(req, SOURCE_SORTS, SOURCE_DEFAULT_SORT);
    await sendCsv(res, 'sources.csv', SOURCE_CSV, streamSources(pool, filter, request));
  });

  return router;
}
