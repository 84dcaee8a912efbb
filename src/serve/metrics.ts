import type { Request, RequestHandler } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';

import { findStoredCounts } from '../store/dashboard.js';

/** HTTP requests served, by method, route pattern and status, since the process started. */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  add(method: string, route: string, status: number): void {
    const key = JSON.stringify([method, route, String(status)]);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  entries(): Array<{ method: string; route: string; status: string; count: number }> {
    return [...this.counts].map(([key, count]) => {
      const [method, route, status] = JSON.parse(key) as string[];
      return { method, route, status, count };
    });
  }
}

/**
 * Returns the route pattern of a request (`/api/reports/:id`), never the raw path, so that the
 * metric labels stay a small fixed set whatever paths clients send.
 */
function routeLabel(req: Request): string {
  if (req.route?.path) return `${req.baseUrl}${String(req.route.path)}`;
  return unroutedLabel(req);
}

function unroutedLabel(req: Request): string {
  if (
    req.path.startsWith('/css/') ||
    req.path.startsWith('/js/') ||
    req.path.startsWith('/vendor/')
  ) {
    return 'static';
  }
  return 'unmatched';
}

/** Counts every request by route and status, and logs it at debug level. */
export function observeRequests(counter: RequestCounter, log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routeLabel(req);
      counter.add(req.method, route, res.statusCode);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.debug(
        { method: req.method, path: req.path, route, status: res.statusCode, ms },
        'HTTP request',
      );
    });
    next();
  };
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function sample(name: string, labels: Record<string, string>, value: number): string {
  const pairs = Object.entries(labels).map(([key, text]) => `${key}="${escapeLabel(text)}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${value}\n`;
}

function family(name: string, type: 'gauge' | 'counter', help: string, samples: string[]): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples.join('')}`;
}

// The statuses of 0001_init.sql, written out so that a status with no inputs reports 0.
const INPUT_STATUSES = ['pending', 'done', 'partial', 'quarantined'];

/**
 * Renders the Prometheus text exposition format (version 0.0.4): stored counts from the
 * database and this process's HTTP requests. When the database does not respond the stored
 * counts are left out and `dmarc_lens_database_up` is 0.
 */
export async function renderMetrics(
  pool: pg.Pool,
  counter: RequestCounter,
  log: Logger,
): Promise<string> {
  const parts: string[] = [];
  let databaseUp = 1;
  try {
    const counts = await findStoredCounts(pool);
    const inputs = new Map(counts.inputs.map((row) => [row.status, row.inputs]));
    parts.push(
      family(
        'dmarc_lens_raw_inputs',
        'gauge',
        'Raw inputs stored, by processing status.',
        INPUT_STATUSES.map((status) =>
          sample('dmarc_lens_raw_inputs', { status }, inputs.get(status) ?? 0),
        ),
      ),
    );
    const byScope = (foreign: boolean) => counts.reports.find((row) => row.foreign === foreign);
    const scopes = [false, true].map((foreign) => ({ foreign, row: byScope(foreign) }));
    const labels = (foreign: boolean) => ({ foreign: String(foreign) });
    parts.push(
      family(
        'dmarc_lens_reports',
        'gauge',
        'Aggregate reports stored; foreign="true" are about domains outside DOMAINS.',
        scopes.map(({ foreign, row }) =>
          sample('dmarc_lens_reports', labels(foreign), row?.reports ?? 0),
        ),
      ),
      family(
        'dmarc_lens_records',
        'gauge',
        'Report records stored.',
        scopes.map(({ foreign, row }) =>
          sample('dmarc_lens_records', labels(foreign), row?.records ?? 0),
        ),
      ),
      family(
        'dmarc_lens_messages',
        'gauge',
        'Messages counted in stored reports, by DMARC result.',
        scopes.flatMap(({ foreign, row }) => [
          sample('dmarc_lens_messages', { ...labels(foreign), result: 'pass' }, row?.pass ?? 0),
          sample(
            'dmarc_lens_messages',
            { ...labels(foreign), result: 'fail' },
            (row?.messages ?? 0) - (row?.pass ?? 0),
          ),
        ]),
      ),
    );
  } catch (error) {
    databaseUp = 0;
    log.warn({ err: error }, 'Metrics: reading stored counts failed');
  }

  parts.push(
    family('dmarc_lens_database_up', 'gauge', '1 when the database answered the metrics queries.', [
      sample('dmarc_lens_database_up', {}, databaseUp),
    ]),
    family(
      'dmarc_lens_http_requests_total',
      'counter',
      'HTTP requests served since the process started, by route pattern and status.',
      counter
        .entries()
        .map((entry) =>
          sample(
            'dmarc_lens_http_requests_total',
            { method: entry.method, route: entry.route, status: entry.status },
            entry.count,
          ),
        ),
    ),
    family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [
      sample('process_resident_memory_bytes', {}, process.memoryUsage().rss),
    ]),
    family('process_uptime_seconds', 'gauge', 'Seconds since the process started.', [
      sample('process_uptime_seconds', {}, Math.round(process.uptime())),
    ]),
  );
  return parts.join('');
}
