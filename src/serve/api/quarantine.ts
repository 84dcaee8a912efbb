import express, { Router } from 'express';
import type { Logger } from 'pino';

import {
  ingestInput,
  processStoredInput,
  type IngestContext,
  type IngestOutcome,
} from '../../ingest/pipeline.js';
import {
  countQuarantinedInputs,
  findQuarantine,
  findRawInputStatus,
  QUARANTINE_SORTS,
  reopenQuarantinedInput,
  reopenQuarantinedInputs,
  streamQuarantine,
} from '../../store/dashboard.js';
import { getAuth } from '../auth/context.js';
import { requireRole } from '../auth/middleware.js';
import { sendCsv } from '../csv-response.js';
import { badRequest, HttpError, notFound } from '../errors.js';
import { parseId, parsePageRequest, parseQuarantineFilter } from '../query.js';
import { QUARANTINE_CSV } from './columns.js';
import { sendRawInput } from './raw.js';

const QUARANTINE_DEFAULT_SORT = { sort: 'received', order: 'desc' } as const;

// Inputs read again per "reprocess all" request, so that one request stays short; the response
// says how many remain, and the dashboard repeats the request until none do.
const REPROCESS_BATCH = 50;

function describeOutcome(outcome: IngestOutcome): Record<string, unknown> {
  return {
    rawInputId: outcome.rawInputId,
    status: outcome.status,
    duplicateInput: outcome.duplicateInput,
    reportsStored: outcome.reportsStored,
    reportsDuplicate: outcome.reportsDuplicate,
    reportsForeign: outcome.reportsForeign,
    records: outcome.records,
    messages: outcome.messages,
    errors: outcome.errors,
  };
}

/** A file name for an upload: from `?name=` or X-File-Name, without control characters. */
function uploadName(value: unknown): string {
  const name = typeof value === 'string' ? value.replace(/[\u0000-\u001f\u007f]/g, '').trim() : '';
  return name.slice(0, 255) || 'upload';
}

/** The quarantine, reprocessing, raw input downloads and report uploads. */
export function quarantineRoutes(ingest: IngestContext, log: Logger): Router {
  const router = Router();
  const { pool } = ingest;
  const admin = requireRole('admin');

  router.get('/api/quarantine', async (req, res) => {
    const filter = parseQuarantineFilter(req);
    const request = parsePageRequest(req, QUARANTINE_SORTS, QUARANTINE_DEFAULT_SORT);
    res.json({ ...(await findQuarantine(pool, filter, request)), filter });
  });

  router.get('/api/quarantine.csv', async (req, res) => {
    const filter = parseQuarantineFilter(req);
    const request = parsePageRequest(req, QUARANTINE_SORTS, QUARANTINE_DEFAULT_SORT);
    await sendCsv(res, 'quarantine.csv', QUARANTINE_CSV, streamQuarantine(pool, filter, request));
  });

  router.post('/api/quarantine/reprocess', admin, async (_req, res) => {
    const ids = await reopenQuarantinedInputs(pool, REPROCESS_BATCH);
    const outcomes: IngestOutcome[] = [];
    for (const id of ids) outcomes.push(await processStoredInput(ingest, id));
    const remaining = await countQuarantinedInputs(pool);
    const count = (status: string) =>
      outcomes.filter((outcome) => outcome.status === status).length;
    log.info({ inputs: ids.length, by: getAuth(res)!.name }, 'Reprocessed quarantined inputs');
    res.json({
      reprocessed: ids.length,
      done: count('done'),
      partial: count('partial'),
      quarantined: count('quarantined'),
      // Inputs still quarantined, including those this request just read again without success.
      remaining,
      outcomes: outcomes.map(describeOutcome),
    });
  });

  router.post('/api/quarantine/:id/reprocess', admin, async (req, res) => {
    const id = parseId(req.params.id, 'input');
    if (!(await reopenQuarantinedInput(pool, id))) {
      const status = await findRawInputStatus(pool, id);
      if (status === null) throw notFound(`Raw input ${id} not found`);
      throw new HttpError(409, 'not-quarantined', `Raw input ${id} is ${status}, not quarantined`);
    }
    const outcome = await processStoredInput(ingest, id);
    log.info(
      { rawInputId: id, status: outcome.status, by: getAuth(res)!.name },
      'Reprocessed input',
    );
    res.json(describeOutcome(outcome));
  });

  router.get('/api/inputs/:id/raw', async (req, res) => {
    await sendRawInput(res, pool, parseId(req.params.id, 'input'));
  });

  // The raw body is the report file itself (XML, gzip, zip or e-mail), as `curl --data-binary`
  // sends it; the size limit is the parser's MAX_INPUT_BYTES.
  const rawBody = express.raw({ type: () => true, limit: ingest.limits.maxInputBytes });
  router.post('/api/upload', admin, rawBody, async (req, res) => {
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (bytes.length === 0)
      throw badRequest('empty-upload', 'Empty upload: send the report file as the request body');
    const name = uploadName(req.query.name ?? req.get('x-file-name'));
    const outcome = await ingestInput(ingest, {
      bytes,
      name,
      source: 'upload',
      origin: { fileName: name, uploadedBy: getAuth(res)!.name },
    });
    log.info({ rawInputId: outcome.rawInputId, name, status: outcome.status }, 'Upload ingested');

    if (outcome.status === 'quarantined') {
      const first = outcome.errors[0];
      res.status(422).json({
        error: {
          code: 'input-quarantined',
          message: first ? `${first.code}: ${first.message}` : 'No report found',
        },
        outcome: describeOutcome(outcome),
      });
      return;
    }
    res
      .status(outcome.reportsStored + outcome.reportsForeign > 0 ? 201 : 200)
      .json(describeOutcome(outcome));
  });

  return router;
}
