import net from 'node:net';
import type { Request } from 'express';

import type {
  DashboardFilter,
  PageRequest,
  QuarantineFilter,
  SortOrder,
} from '../store/dashboard.js';
import { badRequest } from './errors.js';

const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 50;

// Dispositions of RFC 7489 §6.6.4 plus `pass`, which RFC 9990 reports may carry.
const DISPOSITIONS = new Set(['none', 'quarantine', 'reject', 'pass']);

/** Reads a query parameter as one string, rejecting repeated parameters and nested objects. */
function single(req: Request, name: string): string | null {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string')
    throw badRequest('invalid-parameter', `Invalid ${name}: expected one value`);
  return value;
}

function parseDay(req: Request, name: string): string | null {
  const value = single(req, name);
  if (value === null) return null;
  const date = new Date(`${value}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(value) ||
    Number.isNaN(date.getTime()) ||
    date.toISOString().slice(0, 10) !== value
  ) {
    throw badRequest(
      'invalid-parameter',
      `Invalid ${name}=${JSON.stringify(value)}: expected a date YYYY-MM-DD`,
    );
  }
  return value;
}

function parseTimeZone(req: Request): string {
  const value = single(req, 'tz');
  if (value === null) return 'UTC';
  try {
    // Intl rejects names it does not know; PostgreSQL uses the same IANA database.
    new Intl.DateTimeFormat('en', { timeZone: value });
  } catch {
    throw badRequest(
      'invalid-parameter',
      `Invalid tz=${JSON.stringify(value)}: expected an IANA time zone such as Europe/Berlin`,
    );
  }
  return value;
}

function parseDateRange(req: Request): {
  from: string | null;
  to: string | null;
  timeZone: string;
} {
  const from = parseDay(req, 'from');
  const to = parseDay(req, 'to');
  if (from && to && from > to) {
    throw badRequest('invalid-parameter', `Invalid date range: from=${from} is after to=${to}`);
  }
  return { from, to, timeZone: parseTimeZone(req) };
}

/** Reads the dashboard filter from the query: from, to, tz, domain, reporter, result, disposition, foreign. */
export function parseDashboardFilter(req: Request): DashboardFilter {
  const result = single(req, 'result');
  if (result !== null && result !== 'pass' && result !== 'fail') {
    throw badRequest(
      'invalid-parameter',
      `Invalid result=${JSON.stringify(result)}: expected pass or fail`,
    );
  }
  const disposition = single(req, 'disposition')?.toLowerCase() ?? null;
  if (disposition !== null && !DISPOSITIONS.has(disposition)) {
    throw badRequest(
      'invalid-parameter',
      `Invalid disposition=${JSON.stringify(disposition)}: expected none, quarantine, reject or pass`,
    );
  }
  const foreign = single(req, 'foreign');
  if (foreign !== null && foreign !== 'true' && foreign !== 'false') {
    throw badRequest(
      'invalid-parameter',
      `Invalid foreign=${JSON.stringify(foreign)}: expected true or false`,
    );
  }

  return {
    ...parseDateRange(req),
    domain: single(req, 'domain')?.trim().toLowerCase().replace(/\.+$/, '') || null,
    reporter: single(req, 'reporter'),
    dmarcPass: result === null ? null : result === 'pass',
    disposition,
    foreign: foreign === 'true',
  };
}

export function parseQuarantineFilter(req: Request): QuarantineFilter {
  return parseDateRange(req);
}

/** Reads `source_ip` as a normalized IPv4 or IPv6 address. */
export function parseSourceIp(req: Request): string | null {
  const value = single(req, 'source_ip');
  if (value === null) return null;
  if (net.isIP(value.trim()) === 0) {
    throw badRequest(
      'invalid-parameter',
      `Invalid source_ip=${JSON.stringify(value)}: expected an IPv4 or IPv6 address`,
    );
  }
  return value.trim();
}

function parsePositiveInteger(req: Request, name: string, fallback: number, max: number): number {
  const value = single(req, name);
  if (value === null) return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < 1 || number > max) {
    throw badRequest(
      'invalid-parameter',
      `Invalid ${name}=${JSON.stringify(value)}: expected a whole number from 1 to ${max}`,
    );
  }
  return number;
}

/** Reads page, page_size, sort and order; `sort` must be one of `sorts`. */
export function parsePageRequest(
  req: Request,
  sorts: Record<string, string>,
  defaults: { sort: string; order: SortOrder },
): PageRequest {
  const sort = single(req, 'sort') ?? defaults.sort;
  if (!Object.hasOwn(sorts, sort)) {
    throw badRequest(
      'invalid-parameter',
      `Invalid sort=${JSON.stringify(sort)}: expected one of ${Object.keys(sorts).join(', ')}`,
    );
  }
  const order = single(req, 'order') ?? defaults.order;
  if (order !== 'asc' && order !== 'desc') {
    throw badRequest(
      'invalid-parameter',
      `Invalid order=${JSON.stringify(order)}: expected asc or desc`,
    );
  }
  return {
    sort,
    order,
    page: parsePositiveInteger(req, 'page', 1, 1_000_000),
    pageSize: parsePositiveInteger(req, 'page_size', DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
  };
}

/** Reads a numeric id from a route parameter. */
export function parseId(value: unknown, kind: string): number {
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) {
    throw badRequest(
      'invalid-parameter',
      `Invalid ${kind} id ${JSON.stringify(value ?? '')}: expected a number`,
    );
  }
  return Number(value);
}
