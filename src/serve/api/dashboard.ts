import { Router } from 'express';
import type pg from 'pg';

import {
  findDomainPolicies,
  findFilterOptions,
  findIngestHealth,
  findMessagesPerDay,
  findMessagesPerDayByAttribution,
  findReports,
  findSummaryTotals,
  findTopFailingSources,
} from '../../store/dashboard.js';
import { sendCsv } from '../csv-response.js';
import { parseDashboardFilter } from '../query.js';
import { DAILY_CSV } from './columns.js';
import { parseFilterWithService } from './service-filter.js';

async function* once<T>(rows: T[]): AsyncGenerator<T[]> {
  yield rows;
}

/**
 * Serves the overview, `/api/summary` with its CSV twin (messages per day), and `/api/filters`
 * with the options of the filter drop-downs.
 */
export function dashboardRoutes(pool: pg.Pool): Router {
  const router = Router();

  router.get('/api/summary', async (req, res) => {
    const filter = parseFilterWithService(req);
    const [totals, daily, dailyByAttribution, domains, topFailingSources, latestReports, health] =
      await Promise.all([
        findSummaryTotals(pool, filter),
        findMessagesPerDay(pool, filter),
        findMessagesPerDayByAttribution(pool, filter),
        findDomainPolicies(pool, filter),
        findTopFailingSources(pool, filter),
        findReports(pool, filter, { page: 1, pageSize: 10, sort: 'begin', order: 'desc' }),
        findIngestHealth(pool),
      ]);
    res.json({
      filter,
      totals,
      daily,
      dailyByAttribution,
      domains,
      topFailingSources,
      latestReports: latestReports.rows,
      health,
    });
  });

  router.get('/api/summary.csv', async (req, res) => {
    const daily = await findMessagesPerDay(pool, parseFilterWithService(req));
    const rows = daily.labels.map((day, index) => ({
      day,
      messages: daily.pass[index] + daily.fail[index],
      dmarc_pass: daily.pass[index],
      dmarc_fail: daily.fail[index],
    }));
    await sendCsv(res, 'messages-per-day.csv', DAILY_CSV, once(rows));
  });

  router.get('/api/filters', async (req, res) => {
    res.json(await findFilterOptions(pool, parseDashboardFilter(req).foreign));
  });

  return router;
}
