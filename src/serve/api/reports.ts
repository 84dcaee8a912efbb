import { Router, type Response } from 'express';
import type pg from 'pg';

import type { ParseLimits } from '../../parse/limits.js';
import {
  findRecords,
  findReport,
  findReportRecords,
  findReportSource,
  RECORD_SORTS,
  RECORD_SORTS_IN_REPORT,
  REPORT_SORTS,
  streamRecords,
  streamReportRecords,
  streamReports,
  findReports,
} from '../../store/dashboard.js';
import { sendCsv } from '../csv-response.js';
import { notFound } from '../errors.js';
import { parseId, parsePageRequest, parseSourceIp } from '../query.js';
import { RECORD_CSV, REPORT_CSV } from './columns.js';
import { sendReportDocument } from './raw.js';
import { parseFilterWithService } from './service-filter.js';

const REPORT_DEFAULT_SORT = { sort: 'begin', order: 'desc' } as const;
const RECORD_DEFAULT_SORT = { sort: 'begin', order: 'desc' } as const;
const REPORT_RECORD_DEFAULT_SORT = { sort: 'position', order: 'asc' } as const;

async function requireReport(pool: pg.Pool, id: number): Promise<Record<string, unknown>> {
  const report = await findReport(pool, id);
  if (!report) throw notFound(`Report ${id} not found`);
  return report;
}

function sendPage(res: Response, page: object, filter: object): void {
  res.json({ ...page, filter });
}

/** Reports, a report's detail and raw XML, and records, each list with its CSV twin. */
export function reportRoutes(pool: pg.Pool, limits: ParseLimits): Router {
  const router = Router();

  router.get('/api/reports', async (req, res) => {
    const filter = parseFilterWithService(req);
    const request = parsePageRequest(req, REPORT_SORTS, REPORT_DEFAULT_SORT);
    sendPage(res, await findReports(pool, filter, request), filter);
  });

  router.get('/api/reports.csv', async (req, res) => {
    const filter = parseFilterWithService(req);
    const request = parsePageRequest(req, REPORT_SORTS, REPORT_DEFAULT_SORT);
    const name = filter.foreign ? 'foreign-reports.csv' : 'reports.csv';
    await sendCsv(res, name, REPORT_CSV, streamReports(pool, filter, request));
  });

  // Registered before /api/reports/:id, which would otherwise take "12.csv" as an id.
  router.get('/api/reports/:id.csv', async (req, res) => {
    const id = parseId(req.params.id, 'report');
    await requireReport(pool, id);
    const request = parsePageRequest(req, RECORD_SORTS_IN_REPORT, REPORT_RECORD_DEFAULT_SORT);
    await sendCsv(
      res,
      `report-${id}-records.csv`,
      RECORD_CSV,
      streamReportRecords(pool, id, request),
    );
  });

  router.get('/api/reports/:id', async (req, res) => {
    const id = parseId(req.params.id, 'report');
    const report = await requireReport(pool, id);
    const request = parsePageRequest(req, RECORD_SORTS_IN_REPORT, REPORT_RECORD_DEFAULT_SORT);
    res.json({ report, records: await findReportRecords(pool, id, request) });
  });

  router.get('/api/reports/:id/raw', async (req, res) => {
    const id = parseId(req.params.id, 'report');
    const source = await findReportSource(pool, id);
    if (!source) throw notFound(`Report ${id} not found`);
    await sendReportDocument(res, pool, limits, id, source);
  });

  router.get('/api/records', async (req, res) => {
    const filter = parseFilterWithService(req);
    const sourceIp = parseSourceIp(req);
    const request = parsePageRequest(req, RECORD_SORTS, RECORD_DEFAULT_SORT);
    sendPage(res, await findRecords(pool, filter, sourceIp, request), { ...filter, sourceIp });
  });

  router.get('/api/records.csv', async (req, res) => {
    const filter = parseFilterWithService(req);
    const sourceIp = parseSourceIp(req);
    const request = parsePageRequest(req, RECORD_SORTS, RECORD_DEFAULT_SORT);
    await sendCsv(res, 'records.csv', RECORD_CSV, streamRecords(pool, filter, sourceIp, request));
  });

  return router;
}
