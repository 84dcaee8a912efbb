import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseCatalog } from '../../src/analyze/catalog.js';
import {
  AnalysisService,
  startAnalysisWorkers,
  type AnalysisWorkers,
} from '../../src/analyze/service.js';
import { renderReportXml } from '../../src/demo/report-xml.js';
import { generateSampleReports, SAMPLE_SENDERS } from '../../src/demo/sample-reports.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import { analysisRouter } from '../../src/serve/api/analysis-router.js';
import { createApp } from '../../src/serve/app.js';
import {
  openTestRuntime,
  postgresAvailable,
  silentLog,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';
import {
  ADMIN_PASSWORD,
  csvObjects,
  logIn,
  parseCsv,
  sessionHeaders,
  type Session,
} from './harness.js';

const SERVICES_FILE = path.join(import.meta.dirname, '..', '..', 'samples', 'services.yaml');
const VIEWER_PASSWORD = 'viewer-password-long-enough';

const reports = generateSampleReports({ seed: 7489, days: 16, endDate: new Date('2025-11-30Z') });

/** Messages of a sample sender in the generated reports, counted by hand. */
function messagesOf(label: string): number {
  const sender = SAMPLE_SENDERS.find((candidate) => candidate.label.startsWith(label))!;
  let messages = 0;
  for (const report of reports) {
    for (const record of report.records) {
      if (sender.ips.includes(record.sourceIp as string)) messages += record.count;
    }
  }
  return messages;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const kinds: DatabaseKind[] = ['pglite'];
if (await postgresAvailable()) kinds.push('postgres');

describe.each(kinds)('analysis API on %s', (kind) => {
  let runtime: TestRuntime;
  let analysis: AnalysisService;
  let workers: AnalysisWorkers;
  let server: Server;
  let baseUrl: string;
  let admin: Session;
  let viewer: Session;

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, {
      DOMAINS: 'example.com,example.org,example.net',
      SERVICES_FILE,
      ADMIN_PASSWORD,
    });
    for (const [index, report] of reports.entries()) {
      await ingestInput(runtime.ingest, {
        bytes: Buffer.from(renderReportXml(report)),
        name: `sample-${index}.xml`,
        source: 'file',
        origin: {},
      });
    }
    analysis = new AnalysisService({
      pool: runtime.db.pool,
      log: silentLog,
      config: runtime.config,
    });
    await analysis.syncCatalogFile();
    await analysis.refresh();
    workers = startAnalysisWorkers(analysis, { onRolledUp: () => {} }, runtime.config);

    const app = createApp({
      pool: runtime.db.pool,
      config: runtime.config,
      log: silentLog,
      ingest: runtime.ingest,
      demo: false,
      analysis: { router: analysisRouter(analysis) },
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    admin = await logIn(baseUrl, 'admin', ADMIN_PASSWORD);
    const created = await fetch(`${baseUrl}/api/users`, {
      method: 'POST',
      headers: { ...sessionHeaders(admin), 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'viewer', role: 'viewer', password: VIEWER_PASSWORD }),
    });
    expect(created.status).toBe(201);
    viewer = await logIn(baseUrl, 'viewer', VIEWER_PASSWORD);
  }, 120_000);

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await workers?.stop();
    await runtime?.dispose();
  });

  function get(path: string, session: Session | null = admin): Promise<Response> {
    return fetch(`${baseUrl}${path}`, { headers: session ? sessionHeaders(session) : {} });
  }

  async function getJson(path: string, session: Session = viewer): Promise<any> {
    const response = await get(path, session);
    expect(response.status, `${path}: ${await response.clone().text()}`).toBe(200);
    return response.json();
  }

  function send(
    method: string,
    path: string,
    body: string,
    contentType: string,
    session: Session = admin,
    csrf = true,
  ): Promise<Response> {
    return fetch(`${baseUrl}${path}`, {
      method,
      headers: { ...sessionHeaders(session, csrf), 'content-type': contentType },
      body,
    });
  }

  it('needs a login', async () => {
    for (const path of ['/api/services', '/api/recommendations.csv', '/api/catalog']) {
      const response = await get(path, null);
      expect(response.status, path).toBe(401);
    }
  });

  it('sums services with the hand-counted messages', async () => {
    const { rows } = await getJson('/api/services');
    const resets = rows.find((row: any) => row.service === 'password-resets');

    expect(resets.messages).toBe(messagesOf('password resets'));
    expect(resets.pass_rate).toBe(0);
    expect(resets.diagnoses[0].code).toBe('dkim-provider-domain');
    expect(rows.map((row: any) => row.kind)).toContain('unattributed');
  });

  it('sends services as CSV', async () => {
    const response = await get('/api/services.csv', viewer);
    const rows = csvObjects(await response.text());

    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const resets = rows.find((row) => row.service === 'password-resets')!;
    expect(resets.messages).toBe(String(messagesOf('password resets')));
    expect(resets.main_diagnosis).toBe('dkim-provider-domain');
    expect(resets.rules).toBe('provider amazon-ses');
  });

  it('lists unattributed and failing sources first', async () => {
    const body = await getJson('/api/sources/attributed?page_size=5');

    expect(body.total).toBe(17);
    expect(body.rows).toHaveLength(5);
    for (const row of body.rows) {
      expect(row.service).toBeNull();
      expect(row.dmarc_fail).toBeGreaterThan(0);
    }
    expect(body.rows[0].rdns_state).toBeNull();
  });

  it('filters sources by service and sends them as CSV', async () => {
    const response = await get('/api/sources/attributed.csv?service=password-resets', viewer);
    const rows = csvObjects(await response.text());

    expect(rows.map((row) => row.source_ip).sort()).toEqual(['54.240.8.17', '54.240.8.33']);
    expect(rows[0].rule).toBe('provider amazon-ses');
    expect(rows[0].confidence).toBe('low');
  });

  it('explains failures with their fix', async () => {
    const { rows } = await getJson('/api/diagnoses?domain=example.com');
    const codes = rows.map((row: any) => `${row.service}:${row.code}`);

    expect(codes).toEqual([
      'password-resets:dkim-provider-domain',
      'password-resets:spf-provider-domain',
      ':spoofing',
      ':forwarded',
    ]);
    expect(rows[0].messages).toBe(messagesOf('password resets'));
    expect(rows[0].fix).toContain('Easy DKIM');
    const csv = csvObjects(await (await get('/api/diagnoses.csv?domain=example.com')).text());
    expect(csv[2].messages).toBe(String(messagesOf('spoofing')));
    expect(csv[3].messages).toBe(String(messagesOf('mailing-list forwarding')));
  });

  it('lists recommendations in JSON and CSV', async () => {
    const { rows } = await getJson('/api/recommendations');
    const csv = parseCsv(await (await get('/api/recommendations.csv')).text());

    expect(new Set(rows.map((row: any) => row.kind))).toEqual(
      new Set([
        'fix-service',
        'spoofing',
        'add-to-catalog',
        'step-up-policy',
        'set-subdomain-policy',
        'strict-alignment',
      ]),
    );
    expect(csv[0]).toEqual([
      'domain',
      'service',
      'kind',
      'severity',
      'summary',
      'evidence',
      'dns_record',
    ]);
    expect(csv).toHaveLength(rows.length + 1);
    const fix = csv.find((row) => row[2] === 'fix-service')!;
    expect(fix[5]).toContain(`messages=${messagesOf('password resets')};dmarc_pass=0`);
  });

  it('filters recommendations by service', async () => {
    const { rows } = await getJson('/api/recommendations?service=password-resets');

    expect(rows.map((row: any) => row.kind)).toEqual(['fix-service']);
  });

  it('replays a candidate policy', async () => {
    const policy = encodeURIComponent('v=DMARC1; p=reject');
    const body = await getJson(`/api/whatif?domain=example.com&policy=${policy}`);
    const resets = body.rows.find((row: any) => row.service === 'password-resets');
    const unattributed = body.rows.find((row: any) => row.row === 'unattributed');

    expect(body.results[0].policy).toBe('_dmarc.example.com. TXT "v=DMARC1; p=reject"');
    expect(resets.reject).toBe(messagesOf('password resets'));
    // Forwarded mail keeps its override, so only spoofing would be rejected.
    expect(unattributed.reject).toBe(messagesOf('spoofing'));
    expect(unattributed.overridden).toBe(messagesOf('mailing-list forwarding'));
    const csv = csvObjects(
      await (await get(`/api/whatif.csv?domain=example.com&policy=${policy}`)).text(),
    );
    expect(csv.find((row) => row.row === 'total')!.reject).toBe(
      String(messagesOf('password resets') + messagesOf('spoofing')),
    );
  });

  it('replays the next step of every domain without a policy', async () => {
    const { results } = await getJson('/api/whatif');

    expect(results.map((result: any) => result.policy)).toEqual([
      '_dmarc.example.com. TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"',
      '_dmarc.example.net. TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"',
      '_dmarc.example.org. TXT "v=DMARC1; p=quarantine; sp=quarantine; pct=100; adkim=r; aspf=r"',
    ]);
  });

  it('rejects an invalid policy and a policy without a domain', async () => {
    const invalid = await get(
      `/api/whatif?domain=example.com&policy=${encodeURIComponent('v=DMARC1; p=maybe')}`,
    );
    const noDomain = await get(`/api/whatif?policy=${encodeURIComponent('v=DMARC1; p=reject')}`);

    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error.message).toContain('p=maybe');
    expect(noDomain.status).toBe(400);
  });

  it('shows the catalog and whether the file is in sync', async () => {
    const body = await getJson('/api/catalog');
    const yaml = await (await get('/api/catalog.yaml', viewer)).text();

    expect(body.version).toBe(1);
    expect(body.file).toMatchObject({ path: SERVICES_FILE, in_sync: true });
    expect(body.services.map((service: any) => service.name)).toEqual([
      'corporate-mail',
      'billing',
      'password-resets',
      'newsletter',
      'status-notices',
    ]);
    expect(parseCatalog(yaml).services).toHaveLength(5);
  });

  it('keeps catalog changes to admins with a CSRF token', async () => {
    const body = JSON.stringify({ source: '192.0.2.80' });
    const path = '/api/catalog/services/billing/sources';

    const noToken = await send('POST', path, body, 'application/json', admin, false);
    const asViewer = await send('POST', path, body, 'application/json', viewer);
    const put = await send('PUT', '/api/catalog', '{"services":[]}', 'application/json', viewer);

    expect(noToken.status).toBe(403);
    expect((await noToken.json()).error.code).toBe('csrf-token-invalid');
    expect(asViewer.status).toBe(403);
    expect((await asViewer.json()).error.code).toBe('forbidden');
    expect(put.status).toBe(403);
    expect((await getJson('/api/catalog')).version).toBe(1);
  });

  it('rejects an invalid catalog naming the service and rule', async () => {
    const catalog = { services: [{ name: 'billing', rules: { ip: ['300.1.2.0/24'] } }] };
    const response = await send('PUT', '/api/catalog', JSON.stringify(catalog), 'application/json');

    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.code).toBe('invalid-catalog');
    expect(error.message).toContain('Service "billing", rule ip[0]: invalid CIDR "300.1.2.0/24"');
  });

  it('rejects a change based on an old version', async () => {
    const { services } = await getJson('/api/catalog');
    const response = await send(
      'PUT',
      '/api/catalog',
      JSON.stringify({ version: 0, services }),
      'application/json',
    );

    expect(response.status).toBe(409);
    expect((await response.json()).error.code).toBe('catalog-changed');
  });

  it('recomputes attribution after a catalog change', async () => {
    const { services, version } = await getJson('/api/catalog');
    services.push({
      name: 'helpdesk',
      team: 'support',
      contact: null,
      description: null,
      rules: { provider: ['freshdesk'] },
    });
    const response = await send(
      'PUT',
      '/api/catalog',
      JSON.stringify({ version, services }),
      'application/json',
    );

    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.version).toBe(2);
    expect(body.file.in_sync).toBe(false);
    // The worker wakes on the change and attributes the stored senders again.
    await waitFor(async () => {
      const { rows } = await getJson('/api/services?service=helpdesk');
      return rows.some((row: any) => row.messages > 0);
    });
    const { rows } = await getJson('/api/services?service=helpdesk');
    expect(rows[0].messages).toBe(messagesOf('helpdesk'));
    const recommendations = await getJson('/api/recommendations?domain=example.com');
    expect(recommendations.rows.map((row: any) => row.kind)).not.toContain('add-to-catalog');
  });

  it('adds a source to a service', async () => {
    const path = '/api/catalog/services/Billing/sources';
    const added = await send('POST', path, '{"source":"2001:db8:5::/48"}', 'application/json');
    const again = await send('POST', path, '{"source":"2001:db8:5::/48"}', 'application/json');
    const invalid = await send('POST', path, '{"source":"2001:db8:5::1/48"}', 'application/json');
    const unknown = await send(
      'POST',
      '/api/catalog/services/nobody/sources',
      '{"source":"192.0.2.1"}',
      'application/json',
    );

    expect(added.status).toBe(201);
    expect(await added.json()).toEqual({
      service: 'billing',
      source: '2001:db8:5::/48',
      added: true,
      version: 3,
    });
    expect(again.status).toBe(200);
    expect((await again.json()).added).toBe(false);
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error.message).toContain('bits set past the /48 prefix');
    expect(unknown.status).toBe(404);
    const { services } = await getJson('/api/catalog');
    expect(services.find((service: any) => service.name === 'billing').rules.ip).toEqual([
      '2001:db8:5::/48',
    ]);
  });

  it('replaces the catalog from YAML and neutralises formulas in CSV', async () => {
    const yaml = `services:\n  - name: "=HYPERLINK(\\"http://evil.example\\")"\n    rules:\n      provider: amazon-ses\n`;
    const response = await send('PUT', '/api/catalog', yaml, 'application/yaml');

    expect(response.status).toBe(200);
    expect((await response.json()).services).toHaveLength(1);
    await waitFor(async () => {
      const { rows } = await getJson('/api/services');
      return rows.some((row: any) => row.service.startsWith('=') && row.messages > 0);
    });
    const text = await (await get('/api/services.csv', viewer)).text();
    expect(text).toContain(`'=HYPERLINK(""http://evil.example"")"`);
    expect(text).not.toMatch(/(^|,)=HYPERLINK/m);
  });
});
