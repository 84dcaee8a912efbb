/**
 * The analysis API: services, attributed sources, diagnoses, recommendations and what-if,
 * each in JSON and as a `.csv` twin, and the service catalog. Mounted through
 * `AppDependencies.analysis.router`, behind the app's login and CSRF checks. Catalog changes
 * also need the admin role.
 *
 * The catalog that the API edits is the database copy. SERVICES_FILE is not written back,
 * because rewriting a hand-kept YAML file would drop its comments. GET /api/catalog shows
 * whether the file is still in sync, and /api/catalog.yaml downloads the copy to commit.
 */
import express, { Router, type Request } from 'express';

import {
  CatalogError,
  parseCatalog,
  serializeCatalog,
  validateCatalog,
  type ServiceCatalog,
} from '../../analyze/catalog.js';
import { parseIpRange } from '../../analyze/ip-range.js';
import { parseDmarcRecord } from '../../analyze/policy.js';
import type { Recommendation } from '../../analyze/recommendations.js';
import {
  CatalogVersionConflict,
  type AnalysisRequest,
  type AnalysisService,
  type ServiceSummary,
  type WhatIfReport,
  type WhatIfRow,
} from '../../analyze/service.js';
import { ATTRIBUTED_SOURCE_SORTS, type DiagnosisTotals } from '../../store/analysis.js';
import { getAuth } from '../auth/context.js';
import { requireRole } from '../auth/middleware.js';
import { column, sendCsv, type CsvColumn } from '../csv-response.js';
import { badRequest, HttpError, notFound } from '../errors.js';
import { parseDashboardFilter, parsePageRequest } from '../query.js';

type Row = Record<string, unknown>;

const SOURCE_DEFAULT_SORT = { sort: 'attention', order: 'desc' } as const;

// A catalog of a few hundred services stays far below this. JSON bodies have the app's limit.
const YAML_BODY_LIMIT = '1mb';
const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'];

function single(req: Request, name: string): string | null {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string') {
    throw badRequest('invalid-parameter', `Invalid ${name}: expected one value`);
  }
  return value;
}

/** Reads from, to, domain and reporter as the dashboard does, plus `service`. */
function parseAnalysisRequest(req: Request): AnalysisRequest {
  const filter = parseDashboardFilter(req);
  return {
    from: filter.from,
    to: filter.to,
    domain: filter.domain,
    reporter: filter.reporter,
    service: single(req, 'service')?.trim() || null,
  };
}

async function* batchOf<T>(rows: T[]): AsyncGenerator<Row[]> {
  yield rows as Row[];
}

const SERVICE_CSV: CsvColumn[] = [
  ...[
    'kind',
    'service',
    'provider',
    'team',
    'contact',
    'messages',
    'dmarc_pass',
    'dmarc_fail',
    'pass_rate',
    'dkim_aligned',
    'spf_aligned',
    'quarantined',
    'rejected',
    'sources',
    'senders',
    'domains',
    'providers',
  ].map((name) => column(name)),
  column('rules', (row) => (row.rules as ServiceSummary['rules']).map((rule) => rule.rule)),
  column('main_diagnosis', (row) => (row.diagnoses as ServiceSummary['diagnoses'])[0]?.code),
  column('main_fix', (row) => (row.diagnoses as ServiceSummary['diagnoses'])[0]?.fix),
  column('first_seen'),
  column('last_seen'),
];

const SOURCE_CSV: CsvColumn[] = [
  'source_ip',
  'source_name',
  'rdns_state',
  'service',
  'provider',
  'rule',
  'confidence',
  'header_from',
  'messages',
  'dmarc_pass',
  'dmarc_fail',
  'pass_rate',
  'reporters',
  'first_seen',
  'last_seen',
].map((name) => column(name));

const DIAGNOSIS_CSV: CsvColumn[] = [
  'domain',
  'service',
  'provider',
  'code',
  'messages',
  'senders',
  'sources',
  'example_source_ip',
  'summary',
  'fix',
].map((name) => column(name));

const RECOMMENDATION_CSV: CsvColumn[] = [
  column('domain'),
  column('service'),
  column('kind'),
  column('severity'),
  column('summary'),
  column('evidence', (row) =>
    Object.entries(row.evidence as Recommendation['evidence']).map(([k, v]) => `${k}=${v}`),
  ),
  column('dns_record'),
];

const WHATIF_CSV: CsvColumn[] = [
  'domain',
  'policy',
  'row',
  'service',
  'messages',
  'pass',
  'overridden',
  'delivered',
  'quarantine',
  'reject',
].map((name) => column(name));

function diagnosisRow(entry: DiagnosisTotals): Row {
  const { exampleSourceIp, ...rest } = entry;
  return { ...rest, example_source_ip: exampleSourceIp };
}

/** Flattens replays into one row per service, unattributed and total, for tables and CSV. */
function whatIfRows(results: WhatIfReport[]): Row[] {
  return results.flatMap((result) => {
    const row = (kind: string, counts: WhatIfRow) => ({
      domain: result.domain,
      policy: result.policy,
      row: kind,
      ...counts,
      service: kind === 'service' ? counts.service : '',
    });
    return [
      ...result.services.map((counts) => row('service', counts)),
      row('unattributed', result.unattributed),
      row('total', result.total),
    ];
  });
}

/** Builds the routes of the analysis API that the module comment describes. */
export function analysisRouter(analysis: AnalysisService): Router {
  const router = Router();
  const admin = requireRole('admin');
  const log = analysis.log.child({ component: 'catalog-api' });

  router.get(['/api/services', '/api/services.csv'], async (req, res) => {
    const { filter, rows } = await analysis.services(parseAnalysisRequest(req));
    if (req.path.endsWith('.csv')) return sendCsv(res, 'services.csv', SERVICE_CSV, batchOf(rows));
    res.json({ rows, filter });
  });

  router.get(['/api/sources/attributed', '/api/sources/attributed.csv'], async (req, res) => {
    const request = parseAnalysisRequest(req);
    const page = parsePageRequest(req, ATTRIBUTED_SOURCE_SORTS, SOURCE_DEFAULT_SORT);
    if (req.path.endsWith('.csv')) {
      const batches = await analysis.streamSources(request, page);
      return sendCsv(res, 'sources-attributed.csv', SOURCE_CSV, batches as AsyncGenerator<Row[]>);
    }
    const result = await analysis.sources(request, page);
    res.json({ ...result, ...page });
  });

  router.get(['/api/diagnoses', '/api/diagnoses.csv'], async (req, res) => {
    const { filter, rows } = await analysis.diagnoses(parseAnalysisRequest(req));
    const shaped = rows.map(diagnosisRow);
    if (req.path.endsWith('.csv')) {
      return sendCsv(res, 'diagnoses.csv', DIAGNOSIS_CSV, batchOf(shaped));
    }
    res.json({ rows: shaped, filter });
  });

  router.get(['/api/recommendations', '/api/recommendations.csv'], async (req, res) => {
    const { filter, rows } = await analysis.recommendations(parseAnalysisRequest(req));
    if (req.path.endsWith('.csv')) {
      return sendCsv(res, 'recommendations.csv', RECOMMENDATION_CSV, batchOf(rows));
    }
    res.json({ rows, filter });
  });

  router.get(['/api/whatif', '/api/whatif.csv'], async (req, res) => {
    const request = parseAnalysisRequest(req);
    const policy = single(req, 'policy');
    if (policy !== null) {
      if (!request.domain) {
        throw badRequest(
          'invalid-parameter',
          'Missing domain: a candidate policy needs the domain',
        );
      }
      try {
        parseDmarcRecord(policy, request.domain);
      } catch (error) {
        throw badRequest('invalid-parameter', (error as Error).message);
      }
    }
    const result = await analysis.whatIf(request, policy);
    const rows = whatIfRows(result.results);
    if (req.path.endsWith('.csv')) return sendCsv(res, 'whatif.csv', WHATIF_CSV, batchOf(rows));
    res.json({ rows, results: result.results, filter: result.filter });
  });

  router.get(['/api/catalog', '/api/catalog.yaml'], async (req, res) => {
    const view = await analysis.catalog();
    if (req.path.endsWith('.yaml') || single(req, 'format') === 'yaml') {
      const { catalog } = await analysis.storedCatalog();
      res.type('application/yaml').set('Cache-Control', 'no-store');
      res.send(serializeCatalog(catalog));
      return;
    }
    res.json(view);
  });

  const yamlBody = express.text({ type: YAML_TYPES, limit: YAML_BODY_LIMIT });
  router.put('/api/catalog', admin, yamlBody, async (req, res) => {
    const { catalog, expectedVersion } = readCatalogBody(req);
    let update;
    try {
      update = await analysis.replaceCatalog(catalog, expectedVersion);
    } catch (error) {
      if (error instanceof CatalogVersionConflict) {
        throw new HttpError(409, error.code, error.message, { cause: error });
      }
      throw error;
    }
    log.info(
      { version: update.version, services: catalog.services.length, by: getAuth(res)?.name },
      'Service catalog replaced through the API',
    );
    res.json(await analysis.catalog());
  });

  router.post('/api/catalog/services/:name/sources', admin, async (req, res) => {
    const source = req.body?.source ?? req.body?.ip;
    if (typeof source !== 'string' || source.trim() === '') {
      throw badRequest('invalid-body', 'Missing "source": expected an IP address or CIDR range');
    }
    try {
      parseIpRange(source);
    } catch (error) {
      throw badRequest('invalid-body', `Invalid source: ${(error as Error).message}`);
    }

    const result = await analysis.addSource(String(req.params.name), source);
    if (result.status === 'not-found') {
      throw notFound(`Service ${JSON.stringify(req.params.name)} not found in the catalog`);
    }
    if (result.status === 'added') {
      log.info(
        { service: result.service, source, version: result.version, by: getAuth(res)?.name },
        'Source added to a service through the API',
      );
    }
    res.status(result.status === 'added' ? 201 : 200).json({
      service: result.service,
      source: source.trim(),
      added: result.status === 'added',
      version: result.version,
    });
  });

  return router;
}

/**
 * Reads a catalog from a PUT body: YAML text, or JSON in the shape GET /api/catalog returns.
 * The expected version comes from `version` in the JSON body or the `version` parameter.
 */
function readCatalogBody(req: Request): {
  catalog: ServiceCatalog;
  expectedVersion: number | undefined;
} {
  const body: unknown = req.body;
  const versionInput =
    body !== null && typeof body === 'object' && 'version' in body
      ? (body as { version: unknown }).version
      : single(req, 'version');
  const expectedVersion =
    versionInput === null || versionInput === undefined ? undefined : Number(versionInput);
  if (expectedVersion !== undefined && !Number.isInteger(expectedVersion)) {
    throw badRequest(
      'invalid-parameter',
      `Invalid version ${JSON.stringify(versionInput)}: expected the catalog version as a number`,
    );
  }

  if (typeof body === 'string') {
    return { catalog: parseCatalogText(body), expectedVersion };
  }
  if (body === null || typeof body !== 'object' || !('services' in body)) {
    throw badRequest(
      'invalid-body',
      'Expected a catalog: JSON with "services", or YAML with Content-Type application/yaml',
    );
  }
  // Only services are the catalog. The other fields of GET /api/catalog describe its state.
  const result = validateCatalog({ services: (body as { services: unknown }).services });
  if (!result.ok) throw invalidCatalog(new CatalogError(result.issues, 'in the request'));
  return { catalog: result.catalog, expectedVersion };
}

function parseCatalogText(text: string): ServiceCatalog {
  try {
    return parseCatalog(text, { source: 'in the request' });
  } catch (error) {
    if (error instanceof CatalogError) throw invalidCatalog(error);
    throw error;
  }
}

function invalidCatalog(error: CatalogError): HttpError {
  return new HttpError(400, error.code, error.message, { cause: error });
}
