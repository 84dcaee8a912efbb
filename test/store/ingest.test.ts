import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ingestInput } from '../../src/ingest/pipeline.js';
import { rollUpAllReports } from '../../src/store/rollups.js';
import type { RawInput } from '../../src/store/raw-inputs.js';
import {
  openTestRuntime,
  postgresAvailable,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');

function fileInput(name: string, bytes?: Buffer): RawInput {
  return {
    bytes: bytes ?? fs.readFileSync(path.join(FIXTURES, name)),
    name,
    source: 'file',
    origin: { path: name },
  };
}

const kinds: DatabaseKind[] = ['pglite'];
if (await postgresAvailable()) kinds.push('postgres');

describe.each(kinds)('ingest into %s', (kind) => {
  let runtime: TestRuntime;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, { DOMAINS: 'example.com' });
  });

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('stores a report with its records and totals', async () => {
    const outcome = await ingestInput(runtime.ingest, fileInput('rfc7489-google.xml'));

    expect(outcome.status).toBe('done');
    expect(outcome.reportsStored).toBe(1);
    const { rows } = await runtime.db.pool.query(
      `SELECT record_count, message_count, pass_count, domain, policy_p FROM reports
        WHERE report_id = '5717107811868587391'`,
    );
    expect(rows).toEqual([
      {
        record_count: 3,
        message_count: 20,
        pass_count: 17,
        domain: 'example.com',
        policy_p: 'none',
      },
    ]);
  });

  it('keeps IPv6 sources and every DKIM result', async () => {
    const { rows } = await runtime.db.pool.query(
      `SELECT host(source_ip) AS ip, dkim, header_from FROM records
        WHERE reporter_org = 'google.com' ORDER BY id`,
    );
    expect(rows.map((row) => row.ip)).toEqual(['198.51.100.23', '2001:db8::7', '203.0.113.9']);
    expect(rows[0].dkim).toHaveLength(2);
    expect(rows[1].header_from).toBe('example.com');
  });

  it('rolls reports up into senders and daily totals', async () => {
    await rollUpAllReports(runtime.db.pool);
    const { rows } = await runtime.db.pool.query(
      `SELECT sum(messages)::int AS messages, sum(pass_messages)::int AS pass,
              sum(dkim_pass_messages)::int AS dkim, count(DISTINCT sender_key)::int AS senders
         FROM daily_sender_stats WHERE reporter_org = 'google.com'`,
    );
    expect(rows[0]).toEqual({ messages: 20, pass: 17, dkim: 12, senders: 3 });

    const senders = await runtime.db.pool.query(
      `SELECT host(source_ip) AS ip FROM senders ORDER BY source_ip`,
    );
    expect(senders.rows.map((row) => row.ip)).toEqual([
      '198.51.100.23',
      '203.0.113.9',
      '2001:db8::7',
    ]);
  });

  it('changes nothing when the same bytes arrive again', async () => {
    const outcome = await ingestInput(runtime.ingest, fileInput('rfc7489-google.xml'));

    expect(outcome.duplicateInput).toBe(true);
    expect(outcome.reportsStored).toBe(0);
    const { rows } = await runtime.db.pool.query('SELECT count(*)::int AS n FROM records');
    expect(rows[0].n).toBe(3);
  });

  it('treats a resend in another container as a duplicate report', async () => {
    const gz = gzipSync(fs.readFileSync(path.join(FIXTURES, 'rfc7489-google.xml')));
    const outcome = await ingestInput(runtime.ingest, fileInput('resend.xml.gz', gz));

    expect(outcome.duplicateInput).toBe(false);
    expect(outcome.reportsDuplicate).toBe(1);
    expect(outcome.reportsStored).toBe(0);
    const { rows } = await runtime.db.pool.query(
      'SELECT sum(message_count)::int AS n FROM reports',
    );
    expect(rows[0].n).toBe(20);
    await rollUpAllReports(runtime.db.pool);
    const stats = await runtime.db.pool.query(
      'SELECT sum(messages)::int AS n FROM daily_sender_stats',
    );
    expect(stats.rows[0].n).toBe(20);
  });

  it('stores a reused report_id with a new date range as a new report', async () => {
    const xml = fs
      .readFileSync(path.join(FIXTURES, 'rfc7489-google.xml'), 'utf8')
      .replace('<begin>1764892800</begin>', '<begin>1764979200</begin>')
      .replace('<end>1764979199</end>', '<end>1765065599</end>');
    const outcome = await ingestInput(runtime.ingest, fileInput('next-day.xml', Buffer.from(xml)));

    expect(outcome.reportsStored).toBe(1);
    expect(outcome.reportsReusedId).toBe(1);
  });

  it('keeps reports about other domains aside as foreign', async () => {
    const outcome = await ingestInput(runtime.ingest, fileInput('foreign-domain.xml'));

    expect(outcome.reportsForeign).toBe(1);
    expect(outcome.reportsStored).toBe(0);
    const { rows } = await runtime.db.pool.query(
      `SELECT is_foreign FROM reports WHERE domain = 'not-ours.example'`,
    );
    expect(rows).toEqual([{ is_foreign: true }]);
  });

  it('quarantines an unreadable input with its raw bytes', async () => {
    const outcome = await ingestInput(runtime.ingest, fileInput('truncated.xml'));

    expect(outcome.status).toBe('quarantined');
    expect(outcome.errors[0].code).toBe('xml-malformed');
    const { rows } = await runtime.db.pool.query(
      `SELECT status, error_code, byte_size FROM raw_inputs WHERE name = 'truncated.xml'`,
    );
    expect(rows[0]).toMatchObject({ status: 'quarantined', error_code: 'xml-malformed' });
    expect(rows[0].byte_size).toBe(fs.statSync(path.join(FIXTURES, 'truncated.xml')).size);
  });

  it('reads the draft schema and millisecond dates', async () => {
    const outcome = await ingestInput(runtime.ingest, fileInput('draft-no-version.xml'));

    expect(outcome.reportsStored).toBe(1);
    const { rows } = await runtime.db.pool.query(
      `SELECT date_begin, version FROM reports WHERE report_id = '1764900000.441122'`,
    );
    expect(rows[0].version).toBeNull();
    expect(rows[0].date_begin.toISOString()).toBe('2025-12-05T00:00:00.000Z');
  });
});

describe('DOMAINS changes', () => {
  it('recomputes foreign reports when DOMAINS changes', async () => {
    const { applyOwnedDomains } = await import('../../src/store/maintenance.js');
    const runtime = await openTestRuntime('pglite', { DOMAINS: 'example.com' });
    try {
      await ingestInput(runtime.ingest, fileInput('foreign-domain.xml'));
      await ingestInput(runtime.ingest, fileInput('rfc7489-google.xml'));
      const foreign = async () =>
        (
          await runtime.db.pool.query('SELECT domain FROM reports WHERE is_foreign ORDER BY domain')
        ).rows.map((row) => row.domain);
      expect(await foreign()).toEqual(['not-ours.example']);

      expect(await applyOwnedDomains(runtime.db.pool, ['not-ours.example'], runtime.log)).toBe(
        true,
      );
      expect(await foreign()).toEqual(['example.com']);

      // An unset DOMAINS leaves the flags alone.
      expect(await applyOwnedDomains(runtime.db.pool, [], runtime.log)).toBe(false);
      expect(await foreign()).toEqual(['example.com']);
    } finally {
      await runtime.dispose();
    }
  });
});

describe('retention', () => {
  it('drops records, reports and raw inputs older than the retention period', async () => {
    const { applyRetention } = await import('../../src/store/maintenance.js');
    const runtime = await openTestRuntime('pglite');
    try {
      const old = fs
        .readFileSync(path.join(FIXTURES, 'rfc7489-google.xml'), 'utf8')
        .replace('<begin>1764892800</begin>', '<begin>1709251200</begin>')
        .replace('<end>1764979199</end>', '<end>1709337599</end>');
      await ingestInput(runtime.ingest, fileInput('old.xml', Buffer.from(old)));
      await ingestInput(runtime.ingest, fileInput('rfc7489-google.xml'));

      const dropped = await applyRetention(
        runtime.db.pool,
        12,
        runtime.log,
        new Date('2026-12-04T00:00:00Z'),
      );

      expect(dropped).toContain('records_2024_03');
      const reports = await runtime.db.pool.query('SELECT date_begin FROM reports');
      expect(reports.rows.map((row) => row.date_begin.toISOString())).toEqual([
        '2025-12-05T00:00:00.000Z',
      ]);
      const records = await runtime.db.pool.query('SELECT count(*)::int AS n FROM records');
      expect(records.rows[0].n).toBe(3);
      const inputs = await runtime.db.pool.query('SELECT name FROM raw_inputs ORDER BY name');
      expect(inputs.rows.map((row) => row.name)).toEqual(['rfc7489-google.xml']);
    } finally {
      await runtime.dispose();
    }
  });
});

describe('inputs that never finish', () => {
  it('quarantines an input after five unfinished attempts', async () => {
    const { processStoredInput } = await import('../../src/ingest/pipeline.js');
    const { saveRawInput, reopenRawInputs } = await import('../../src/store/raw-inputs.js');
    const runtime = await openTestRuntime('pglite');
    try {
      // Five attempts that died before their commit, as a crash loop would leave them.
      const stored = await saveRawInput(runtime.db.pool, fileInput('rfc7489-google.xml'));
      await runtime.db.pool.query('UPDATE raw_inputs SET attempts = 5 WHERE id = $1', [stored.id]);

      const outcome = await processStoredInput(runtime.ingest, stored.id);

      expect(outcome.status).toBe('quarantined');
      expect(outcome.errors[0].code).toBe('repeated-failure');
      expect(outcome.errors[0].message).toMatch(/did not finish 5 times.*run reprocess/);

      // reprocess starts the count again, and the input reads normally.
      expect(await reopenRawInputs(runtime.db.pool, ['quarantined'])).toEqual([stored.id]);
      const again = await processStoredInput(runtime.ingest, stored.id);
      expect(again.status).toBe('done');
      expect(again.reportsStored).toBe(1);
    } finally {
      await runtime.dispose();
    }
  });
});
