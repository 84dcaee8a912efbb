import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rollUpAllReports, rollUpReports } from '../../src/store/rollups.js';
import { postgresAvailable } from '../helpers/database.js';
import {
  ADMIN_PASSWORD,
  csvObjects,
  logIn,
  parseCsv,
  sessionHeaders,
  startTestServer,
  type Session,
  type TestServer,
} from './harness.js';
import { seedDashboardData } from './seed.js';

const available = await postgresAvailable();

describe.skipIf(!available)('dashboard API on PostgreSQL', () => {
  let server: TestServer;
  let admin: Session;
  let limitQuarantinedId: number;

  beforeAll(async () => {
    server = await startTestServer('postgres');
    ({ limitQuarantinedId } = await seedDashboardData(server.runtime));
    admin = await logIn(server.baseUrl, 'admin', ADMIN_PASSWORD);
  });

  afterAll(async () => {
    await server?.close();
  });

  async function get(path: string): Promise<Response> {
    return fetch(`${server.baseUrl}${path}`, { headers: sessionHeaders(admin) });
  }

  async function getJson(path: string): Promise<any> {
    const response = await get(path);
    expect(response.status, `${path}: ${response.status}`).toBe(200);
    return response.json();
  }

  async function post(path: string, body?: BodyInit, headers: Record<string, string> = {}) {
    return fetch(`${server.baseUrl}${path}`, {
      method: 'POST',
      headers: { ...sessionHeaders(admin), ...headers },
      body,
    });
  }

  describe('summary', () => {
    it('totals leave foreign reports out', async () => {
      const summary = await getJson('/api/summary');

      expect(summary.totals.messages).toBe(55);
      expect(summary.totals.pass).toBe(38);
      expect(summary.totals.fail).toBe(17);
      expect(summary.totals.reports).toBe(5);
      expect(summary.totals.records).toBe(9);
      expect(summary.totals.sources).toBe(6);
      expect(summary.totals.passRate).toBeCloseTo(38 / 55);
    });

    it('splits messages per day into pass and fail', async () => {
      const { daily } = await getJson('/api/summary');

      expect(daily.labels).toEqual(['2025-12-05', '2025-12-06']);
      expect(daily.pass).toEqual([21, 17]);
      expect(daily.fail).toEqual([14, 3]);
    });

    it('fills days without reports with zeros', async () => {
      const { daily } = await getJson('/api/summary?from=2025-12-03&to=2025-12-06');

      expect(daily.labels).toEqual(['2025-12-03', '2025-12-04', '2025-12-05', '2025-12-06']);
      expect(daily.pass).toEqual([0, 0, 21, 17]);
    });

    it('lists domains with their latest policy', async () => {
      const { domains } = await getJson('/api/summary');
      const byDomain = Object.fromEntries(domains.map((row: any) => [row.domain, row]));

      expect(Object.keys(byDomain).sort()).toEqual(['example.com', 'mail.example.com']);
      expect(byDomain['example.com'].messages).toBe(35);
      expect(byDomain['mail.example.com'].policy.p).toBe('none');
    });

    it('puts the worst failing sources first', async () => {
      const { topFailingSources } = await getJson('/api/summary');

      expect(topFailingSources.map((row: any) => row.source_ip)).toEqual([
        '192.0.2.44',
        '2001:db8::7',
        '192.0.2.66',
      ]);
    });

    it('reports ingestion health', async () => {
      const { health, latestReports } = await getJson('/api/summary');

      expect(health.inputs.quarantined).toBe(2);
      expect(health.inputs.done).toBe(6);
      expect(health.reporters.map((row: any) => row.reporter_org)).not.toContain('Mail.Ru');
      expect(latestReports[0].report_id).toBe('next-day-1');
    });

    it('applies every filter', async () => {
      const cases: Array<[string, number]> = [
        ['from=2025-12-06', 20],
        ['to=2025-12-05', 35],
        ['domain=example.com', 55],
        ['domain=mail.example.com', 20],
        ['domain=Example.COM.', 55],
        ['reporter=google.com', 40],
        ['result=fail', 17],
        ['result=pass', 38],
        ['disposition=quarantine', 3],
        ['disposition=pass', 4],
        ['foreign=true', 100],
        ['from=2025-12-05&tz=America/Los_Angeles', 20],
      ];
      for (const [query, messages] of cases) {
        const { totals } = await getJson(`/api/summary?${query}`);
        expect(totals.messages, query).toBe(messages);
      }
    });

    it('groups days in the requested time zone', async () => {
      const { daily } = await getJson('/api/summary?tz=America/Los_Angeles');

      expect(daily.labels).toEqual(['2025-12-04', '2025-12-05']);
    });

    it('gives the same overview from rollups and from records', async () => {
      const overview = async (query: string) => {
        const { totals, daily, domains } = await getJson(`/api/summary?${query}`);
        return { totals, daily, domains };
      };
      // Etc/UTC has the same days as UTC but is not read from the rollups.
      const fromRecords = await overview('tz=Etc/UTC&from=2025-12-05');
      const fresh = await overview('from=2025-12-05');

      expect(await rollUpReports(server.runtime.db.pool, 2)).toBe(2);
      const mixed = await overview('from=2025-12-05');
      await rollUpAllReports(server.runtime.db.pool);
      const rolled = await overview('from=2025-12-05');

      expect(fromRecords.totals.messages).toBe(55);
      expect(fresh).toEqual(fromRecords);
      expect(mixed).toEqual(fromRecords);
      expect(rolled).toEqual(fromRecords);
      const filtered = await overview(
        'from=2025-12-06&domain=mail.example.com&reporter=google.com',
      );
      expect(filtered.totals).toMatchObject({
        messages: 20,
        pass: 17,
        reports: 1,
        records: 3,
        sources: 3,
      });
    });

    it('CSV twin lists messages per day', async () => {
      const response = await get('/api/summary.csv?domain=example.com');

      expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(response.headers.get('content-disposition')).toContain('attachment');
      expect(parseCsv(await response.text())).toEqual([
        ['day', 'messages', 'dmarc_pass', 'dmarc_fail'],
        ['2025-12-05', '35', '21', '14'],
        ['2025-12-06', '20', '17', '3'],
      ]);
    });
  });

  describe('filter validation', () => {
    it.each([
      ['from=2025-13-01', 'from'],
      ['to=yesterday', 'to'],
      ['from=2025-12-06&to=2025-12-05', 'from=2025-12-06'],
      ['result=maybe', 'result'],
      ['disposition=drop', 'disposition'],
      ['tz=Mars/Olympus', 'tz'],
      ['foreign=yes', 'foreign'],
      ['from=2025-12-01&from=2025-12-02', 'from'],
    ])('rejects %s', async (query, named) => {
      const response = await get(`/api/summary?${query}`);
      const body = await response.json();

      expect(response.status).toBe(400);
      expect(body.error.code).toBe('invalid-parameter');
      expect(body.error.message).toContain(named);
    });

    it('rejects an unknown sort key', async () => {
      const response = await get('/api/reports?sort=password_hash');

      expect(response.status).toBe(400);
      expect((await response.json()).error.message).toContain('expected one of');
    });

    it('rejects an oversized page', async () => {
      expect((await get('/api/records?page_size=501')).status).toBe(400);
      expect((await get('/api/records?page=0')).status).toBe(400);
    });
  });

  describe('reports', () => {
    it('lists owned reports newest first', async () => {
      const page = await getJson('/api/reports');

      expect(page.total).toBe(5);
      expect(page.rows[0].report_id).toBe('next-day-1');
      expect(page.rows.map((row: any) => row.org_name)).not.toContain('Mail.Ru');
      expect(page.sort).toBe('begin');
      expect(page.order).toBe('desc');
    });

    it('paginates and sorts on the server', async () => {
      const first = await getJson('/api/reports?sort=messages&order=asc&page_size=2');
      const third = await getJson('/api/reports?sort=messages&order=asc&page_size=2&page=3');

      expect(first.total).toBe(5);
      expect(first.rows.map((row: any) => row.messages)).toEqual([4, 4]);
      expect(third.rows.map((row: any) => row.messages)).toEqual([20]);
    });

    it('filters by result and disposition', async () => {
      const failing = await getJson('/api/reports?result=fail');
      const quarantined = await getJson('/api/reports?disposition=quarantine');
      const passingOnly = await getJson('/api/reports?disposition=pass&result=pass');

      expect(failing.total).toBe(4);
      expect(quarantined.rows.map((row: any) => row.report_id)).toEqual(['next-day-1']);
      expect(passingOnly.rows.map((row: any) => row.report_id)).toEqual(['r9990-0001']);
    });

    it('lists foreign reports on their own', async () => {
      const page = await getJson('/api/reports?foreign=true');

      expect(page.total).toBe(1);
      expect(page.rows[0]).toMatchObject({ org_name: 'Mail.Ru', foreign: true, messages: 100 });
    });

    it('CSV twin has the export columns', async () => {
      const text = await (await get('/api/reports.csv?sort=messages&order=desc')).text();
      const [header] = parseCsv(text);
      const rows = csvObjects(text);

      expect(header.slice(0, 8)).toEqual([
        'org_name',
        'report_id',
        'domain',
        'begin',
        'end',
        'records',
        'messages',
        'dmarc_pass',
      ]);
      expect(rows).toHaveLength(5);
      expect(rows[0]).toMatchObject({
        messages: '20',
        dmarc_pass: '17',
        begin: expect.stringMatching(/Z$/),
      });
    });

    it('CSV twin applies the filters', async () => {
      const rows = csvObjects(await (await get('/api/reports.csv?reporter=google.com')).text());

      expect(rows.map((row) => row.report_id).sort()).toEqual([
        '5717107811868587391',
        'next-day-1',
      ]);
    });

    it('shows a report with every record', async () => {
      const { rows } = await getJson(
        '/api/reports?reporter=google.com&domain=example.com&to=2025-12-05',
      );
      const detail = await getJson(`/api/reports/${rows[0].id}`);

      expect(detail.report).toMatchObject({ org_name: 'google.com', policy_p: 'none', records: 3 });
      expect(detail.records.total).toBe(3);
      expect(detail.records.rows.map((row: any) => row.source_ip)).toEqual([
        '198.51.100.23',
        '2001:db8::7',
        '203.0.113.9',
      ]);
      expect(detail.records.rows[0].dkim).toHaveLength(2);
    });

    it('report CSV twin streams its records', async () => {
      const { rows } = await getJson('/api/reports?reporter=google.com&to=2025-12-05');
      const records = csvObjects(await (await get(`/api/reports/${rows[0].id}.csv`)).text());

      expect(records).toHaveLength(3);
      expect(records[0]).toMatchObject({
        source_ip: '198.51.100.23',
        dkim_domains: 'example.com;sendgrid.net',
        dkim_selectors: 's2025;smtpapi',
        count: '12',
      });
    });

    it('answers 404 for an unknown report', async () => {
      const response = await get('/api/reports/999999');

      expect(response.status).toBe(404);
      expect((await response.json()).error.code).toBe('not-found');
      expect((await get('/api/reports/abc')).status).toBe(400);
    });

    it('returns raw XML as a plain-text download', async () => {
      const { rows } = await getJson('/api/reports?reporter=google.com&to=2025-12-05');
      const response = await get(`/api/reports/${rows[0].id}/raw`);
      const text = await response.text();

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-disposition')).toMatch(
        /^attachment; filename="report-\d+\.xml"$/,
      );
      expect(text).toContain('<report_id>5717107811868587391</report_id>');
    });

    it('extracts raw XML from a gzipped input', async () => {
      const { rows } = await getJson('/api/reports?domain=mail.example.com');
      const text = await (await get(`/api/reports/${rows[0].id}/raw`)).text();

      expect(text.startsWith('<?xml')).toBe(true);
      expect(text).toContain('<report_id>next-day-1</report_id>');
    });
  });

  describe('records', () => {
    it('lists records with filters', async () => {
      const all = await getJson('/api/records');
      const failing = await getJson('/api/records?result=fail&sort=count&order=desc');

      expect(all.total).toBe(9);
      expect(failing.total).toBe(4);
      expect(failing.rows.map((row: any) => row.count)).toEqual([7, 4, 3, 3]);
    });

    it('filters by source address', async () => {
      const page = await getJson('/api/records?source_ip=2001:DB8:0::7');

      expect(page.total).toBe(2);
      expect(page.rows.every((row: any) => row.source_ip === '2001:db8::7')).toBe(true);
      expect((await get('/api/records?source_ip=not-an-ip')).status).toBe(400);
    });

    it('CSV twin neutralises formulas', async () => {
      const rows = csvObjects(await (await get('/api/records.csv?source_ip=192.0.2.66')).text());

      expect(rows).toHaveLength(1);
      expect(rows[0].envelope_from.startsWith("'=")).toBe(true);
      expect(rows[0].spf_domains.startsWith("'+")).toBe(true);
      expect(rows[0].org_name).toContain('<script>');
      expect(rows[0].dmarc_pass).toBe('false');
    });

    it('CSV twin has the export record columns', async () => {
      const text = await (await get('/api/records.csv')).text();
      const [header, ...rows] = parseCsv(text);

      expect(header.slice(0, 6)).toEqual([
        'org_name',
        'report_id',
        'begin',
        'end',
        'domain',
        'source_ip',
      ]);
      expect(header).toContain('override_reasons');
      expect(rows).toHaveLength(9);
    });
  });

  describe('sources', () => {
    it('lists failing sources first', async () => {
      const page = await getJson('/api/sources');

      expect(page.total).toBe(6);
      expect(page.rows.slice(0, 3).map((row: any) => [row.source_ip, row.dmarc_fail])).toEqual([
        ['192.0.2.44', 7],
        ['2001:db8::7', 6],
        ['192.0.2.66', 4],
      ]);
    });

    it('gives volume, pass rate and first and last seen', async () => {
      const page = await getJson('/api/sources?sort=messages&order=desc');
      const top = page.rows[0];

      expect(top).toMatchObject({
        source_ip: '198.51.100.23',
        messages: 24,
        dmarc_pass: 24,
        pass_rate: 1,
        reports: 2,
        domains: ['example.com', 'mail.example.com'],
        first_seen: '2025-12-05T00:00:00.000Z',
        last_seen: '2025-12-06T00:00:00.000Z',
      });
    });

    it('applies the date filter', async () => {
      const page = await getJson('/api/sources?from=2025-12-06');

      expect(page.total).toBe(3);
    });

    it('CSV twin matches the list', async () => {
      const rows = csvObjects(await (await get('/api/sources.csv?result=fail')).text());

      expect(rows.map((row) => row.source_ip)).toEqual(['192.0.2.44', '2001:db8::7', '192.0.2.66']);
      expect(rows[1].dmarc_fail).toBe('6');
    });
  });

  describe('filter options', () => {
    it('lists domains and reporters', async () => {
      const options = await getJson('/api/filters');

      expect(options.domains).toEqual(['example.com', 'mail.example.com']);
      expect(options.reporters).toContain('google.com');
      expect(options.reporters).not.toContain('Mail.Ru');
    });
  });

  describe('analysis placeholders', () => {
    it('answers 501 until analysis is wired', async () => {
      for (const path of ['/api/services', '/api/recommendations', '/api/whatif']) {
        const response = await get(path);
        expect(response.status, path).toBe(501);
        expect((await response.json()).error.code).toBe('not-available');
      }
    });
  });

  describe('quarantine', () => {
    it('lists quarantined inputs with errors', async () => {
      const page = await getJson('/api/quarantine?sort=name&order=desc');

      expect(page.total).toBe(2);
      expect(page.rows.map((row: any) => row.name)).toEqual(['was-too-long.xml', 'truncated.xml']);
      expect(page.rows[0]).toMatchObject({ status: 'quarantined', error_code: 'too-many-records' });
      expect(page.rows[1].errors[0].code).toBe('xml-malformed');
    });

    it('CSV twin lists the same inputs', async () => {
      const rows = csvObjects(await (await get('/api/quarantine.csv')).text());

      expect(rows.map((row) => row.error_code).sort()).toEqual([
        'too-many-records',
        'xml-malformed',
      ]);
    });

    it('serves a raw input as a download', async () => {
      const response = await get(`/api/inputs/${limitQuarantinedId}/raw`);

      expect(response.headers.get('content-type')).toBe('application/octet-stream');
      expect(response.headers.get('content-disposition')).toBe(
        'attachment; filename="was-too-long.xml"',
      );
      expect(await response.text()).toContain('was-too-long-1');
    });

    it('reprocesses one input into reports', async () => {
      const response = await post(`/api/quarantine/${limitQuarantinedId}/reprocess`);
      const outcome = await response.json();

      expect(response.status).toBe(200);
      expect(outcome).toMatchObject({ status: 'done', reportsStored: 1, records: 3 });
      const { total } = await getJson('/api/quarantine');
      expect(total).toBe(1);
      const { totals } = await getJson('/api/summary');
      expect(totals.messages).toBe(75);
    });

    it('rejects reprocessing an input that is done', async () => {
      const response = await post(`/api/quarantine/${limitQuarantinedId}/reprocess`);

      expect(response.status).toBe(409);
      expect((await response.json()).error.code).toBe('not-quarantined');
      expect((await post('/api/quarantine/999999/reprocess')).status).toBe(404);
    });

    it('reprocesses everything left', async () => {
      const response = await post('/api/quarantine/reprocess');
      const result = await response.json();

      expect(response.status).toBe(200);
      expect(result).toMatchObject({ reprocessed: 1, quarantined: 1, remaining: 1 });
      const { rows } = await getJson('/api/quarantine');
      expect(rows[0].attempts).toBe(2);
    });
  });

  describe('upload', () => {
    const xml = (id: string) =>
      `<?xml version="1.0"?><feedback><report_metadata><org_name>Upload Test</org_name>
       <email>r@upload.example</email><report_id>${id}</report_id>
       <date_range><begin>1764892800</begin><end>1764979199</end></date_range></report_metadata>
       <policy_published><domain>example.com</domain><p>reject</p></policy_published>
       <record><row><source_ip>198.51.100.200</source_ip><count>2</count><policy_evaluated>
       <disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
       <identifiers><header_from>example.com</header_from></identifiers>
       <auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results>
       </record></feedback>`;

    it('ingests a report file from the body', async () => {
      const response = await post('/api/upload?name=upload-1.xml', xml('upload-1'), {
        'content-type': 'application/xml',
      });
      const outcome = await response.json();

      expect(response.status).toBe(201);
      expect(outcome).toMatchObject({ status: 'done', reportsStored: 1, messages: 2 });
      const { rows } = await getJson('/api/quarantine?page_size=500');
      expect(rows.some((row: any) => row.name === 'upload-1.xml')).toBe(false);
      const stored = await server.runtime.db.pool.query(
        `SELECT source, origin FROM raw_inputs WHERE name = 'upload-1.xml'`,
      );
      expect(stored.rows[0]).toEqual({
        source: 'upload',
        origin: { fileName: 'upload-1.xml', uploadedBy: 'admin' },
      });
    });

    it('treats the same bytes as a duplicate', async () => {
      const response = await post('/api/upload', xml('upload-1'), { 'x-file-name': 'again.xml' });
      const outcome = await response.json();

      expect(response.status).toBe(200);
      expect(outcome.duplicateInput).toBe(true);
    });

    it('quarantines an unreadable upload with 422', async () => {
      const response = await post('/api/upload?name=junk.bin', 'not a report at all');
      const body = await response.json();

      expect(response.status).toBe(422);
      expect(body.error.code).toBe('input-quarantined');
      expect(body.outcome.status).toBe('quarantined');
    });

    it('rejects an empty upload', async () => {
      const response = await post('/api/upload', '');

      expect(response.status).toBe(400);
      expect((await response.json()).error.code).toBe('empty-upload');
    });
  });

  describe('errors', () => {
    it('answers unknown API paths with JSON 404', async () => {
      const response = await get('/api/nothing-here');

      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({
        error: { code: 'not-found', message: 'No API endpoint GET /api/nothing-here' },
      });
    });

    it('answers malformed JSON with 400', async () => {
      const response = await post('/api/users', '{"username":', {
        'content-type': 'application/json',
      });

      expect(response.status).toBe(400);
      expect((await response.json()).error.code).toBe('invalid-json');
    });
  });

  describe('metrics', () => {
    it('counts inputs, reports, messages and requests', async () => {
      const response = await fetch(`${server.baseUrl}/metrics`);
      const text = await response.text();

      expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      expect(text).toContain('dmarc_lens_raw_inputs{status="quarantined"} 2');
      expect(text).toMatch(/dmarc_lens_reports\{foreign="true"\} 1\n/);
      expect(text).toMatch(/dmarc_lens_messages\{foreign="false",result="pass"\} \d+/);
      expect(text).toContain('dmarc_lens_database_up 1');
      expect(text).toMatch(
        /dmarc_lens_http_requests_total\{method="GET",route="\/api\/reports\/:id",status="200"\} \d+/,
      );
      expect(text).toMatch(/route="\/api\/reports",status="400"/);
    });

    it('needs a token behind a proxy', async () => {
      const proxied = await fetch(`${server.baseUrl}/metrics`, {
        headers: { 'x-forwarded-for': '203.0.113.1' },
      });
      const withSession = await fetch(`${server.baseUrl}/metrics`, {
        headers: { 'x-forwarded-for': '203.0.113.1', ...sessionHeaders(admin) },
      });

      expect(proxied.status).toBe(401);
      expect(withSession.status).toBe(200);
    });
  });
});
