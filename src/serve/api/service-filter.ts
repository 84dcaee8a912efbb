import type { Request } from 'express';

import type { DashboardFilter } from '../../store/dashboard.js';
import { badRequest } from '../errors.js';
import { parseDashboardFilter } from '../query.js';

/**
 * Reads the dashboard filter and `service`, a catalog service name as the analysis API takes
 * it, so that every list of the dashboard narrows to one service the same way.
 */
export function parseFilterWithService(req: Request): DashboardFilter {
  const service = req.query.service;
  if (service !== undefined && typeof service !== 'string') {
    throw badRequest('invalid-parameter', 'Invalid service: expected one value');
  }
  return { ...parseDashboardFilter(req), service: service?.trim() || null };
}
