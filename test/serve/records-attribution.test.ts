import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AnalysisService } from '../../src/analyze/service.js';
import { renderReportXml } from '../../src/demo/report-xml.js';
import { generateSampleReports, SAMPLE_SENDERS } from '../../src/demo/sample-reports.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import { createApp } from '../../src/serve/app.js';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  openTestRuntime,
  postgresAvailable,
  silentLog,
  type TestRuntime,
} from '../helpers/database.js';
import { ADMIN_PASSWORD, csvObjects, logIn, sessionHeaders, type Session } from './harness.js';

const SERVICES_FILE = path.join(import.meta.dirname, '..', '..', 'samples', 'services.yaml');
const RESETS_IPS = ['54.240.8.17', '54.240.8.33'];

const reports = generateSampleReports({ seed: 7489, days: 4, endDate: new Date('2025-11-30Z') });

/** Records and messages of a sample sender in the generated reports, counted by hand. */
function countOf(label: string): { records: number; messages: number } {
  const sender = SAMPLE_SENDERS.find((candidate) => candidate.label.startsWith(label))!;
  let records = 0;
  let messages = 0;
  for (const report of reports) {
    for (const record of report.records) {
      if (!sender.ips.includes(record.sourceIp as string)) continue;
      records += 1;
      messages += record.count;
    }
  }
  return { records, messages };
}

const available = await postgresAvailable();

// The records list joins attribution (senders) and reverse DNS (source_hosts) as the records
// export does, and filters by catalog service. The overview splits its chart by attribution.
describe.skipIf(!available)('records with attribution on PostgreSQL', () => {
  let runtime: TestRuntime;
  let server: Server;
  let baseUrl: string;
  let admin: Session;

  beforeAll(async () => {
    runtime = await openTestRuntime('postgres', {
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
    const analysis = new AnalysisService({
      pool: runtime.db.pool,
      log: silentLog,
      config: runtime.config,
    });
    await analysis.syncCatalogFile();
    await analysis.refresh();

    // One forward-confirmed name and one that failed confirmation, as the enrichment worker
    // stores them.
    await runtime.db.pool.query(
      `INSERT INTO source_hosts (ip, ptr, state, names, expires_at)
       VALUES ('54.240.8.17', 'a8-17.smtp-out.amazonses.com', 'ok',
               '{a8-17.smtp-out.amazonses.com}', now() + interval '1 day'),
              ('54.240.8.33', NULL, 'not-confirmed', '{spoofed.example}', now() + interval '1 day')`,
    );

    const app = createApp({
      pool: runtime.db.pool,
      config: runtime.config,
      log: silentLog,
      ingest: runtime.ingest,
      demo: false,
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    admin = await logIn(baseUrl, 'admin', ADMIN_PASSWORD);
  }, 60_000);

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await runtime?.dispose();
  });

  async function getJson(pathAndQuery: string): Promise<any> {
    const response = await fetch(`${baseUrl}${pathAndQuery}`, { headers: sessionHeaders(admin) });
    expect(response.status, `${pathAndQuery}: ${await response.clone().text()}`).toBe(200);
    return response.json();
  }

  async function getCsv(pathAndQuery: string): Promise<Array<Record<string, string>>> {
    const response = await fetch(`${baseUrl}${pathAndQuery}`, { headers: sessionHeaders(admin) });
    expect(response.status).toBe(200);
    return csvObjects(await response.text());
  }

  it('fills service and source_name in records', async () => {
    const page = await getJson('/api/records?range=all&source_ip=54.240.8.17&page_size=500');
    const spoofing = await getJson('/api/records?source_ip=45.142.120.7&page_size=500');

    expect(page.total).toBeGreaterThan(0);
    for (const row of page.rows) {
      expect(row.service).toBe('password-resets');
      expect(row.source_name).toBe('a8-17.smtp-out.amazonses.com');
    }
    expect(spoofing.total).toBeGreaterThan(0);
    expect(spoofing.rows.every((row: any) => row.service === null)).toBe(true);
  });

  it('leaves source_name empty without forward confirmation', async () => {
    const page = await getJson('/api/records?source_ip=54.240.8.33&page_size=500');

    expect(page.total).toBeGreaterThan(0);
    expect(page.rows.every((row: any) => row.source_name === null)).toBe(true);
    expect(page.rows.every((row: any) => row.service === 'password-resets')).toBe(true);
  });

  it('filters records by service', async () => {
    const expected = countOf('password resets');
    const page = await getJson('/api/records?service=password-resets&page_size=500');
    const mixedCase = await getJson('/api/records?service=Password-Resets');
    const none = await getJson('/api/records?service=no-such-service');

    expect(page.total).toBe(expected.records);
    expect(page.rows.reduce((sum: number, row: any) => sum + row.count, 0)).toBe(expected.messages);
    expect(new Set(page.rows.map((row: any) => row.source_ip))).toEqual(new Set(RESETS_IPS));
    expect(mixedCase.total).toBe(expected.records);
    expect(none.total).toBe(0);
  });

  it('combines the service filter with the others', async () => {
    const failing = await getJson('/api/records?service=billing&result=fail');
    const billing = await getJson('/api/records?service=billing');

    expect(billing.total).toBe(countOf('billing').records);
    expect(failing.total).toBe(0);
  });

  it('sorts records by service', async () => {
    const page = await getJson('/api/records?sort=service&order=asc&page_size=500');
    const services = page.rows.map((row: any) => row.service).filter(Boolean);

    expect(services).toEqual([...services].sort());
    expect(page.rows.at(-1).service).toBeNull();
  });

  it('sends service and source_name in the CSV twin', async () => {
    const rows = await getCsv('/api/records.csv?service=password-resets');

    expect(rows).toHaveLength(countOf('password resets').records);
    expect(rows.every((row) => row.service === 'password-resets')).toBe(true);
    expect(rows.filter((row) => row.source_name === 'a8-17.smtp-out.amazonses.com')).toHaveLength(
      countOf('password resets').records -
        rows.filter((row) => row.source_ip === '54.240.8.33').length,
    );
    expect(rows.some((row) => row.source_ip === '54.240.8.33' && row.source_name === '')).toBe(
      true,
    );
  });

  it('rejects a repeated service parameter', async () => {
    const response = await fetch(`${baseUrl}/api/records?service=a&service=b`, {
      headers: sessionHeaders(admin),
    });

    expect(response.status).toBe(400);
    expect((await response.json()).error.message).toContain('service');
  });

  it('narrows the overview to one service', async () => {
    const resets = countOf('password resets');
    const { totals, daily, domains } = await getJson('/api/summary?service=password-resets');

    expect(totals.messages).toBe(resets.messages);
    expect(totals.records).toBe(resets.records);
    expect(totals.pass).toBe(0);
    expect(totals.sources).toBe(RESETS_IPS.length);
    expect(daily.fail.reduce((sum: number, value: number) => sum + value, 0)).toBe(resets.messages);
    expect(domains.map((row: any) => row.domain)).toEqual(['example.com']);
  });

  it('lists reports with mail of one service', async () => {
    const expected = reports.filter((report) =>
      report.records.some((record) => RESETS_IPS.includes(record.sourceIp as string)),
    );
    const page = await getJson('/api/reports?service=password-resets&page_size=500');
    const newsletter = await getJson('/api/reports?service=newsletter&page_size=500');

    expect(page.total).toBe(expected.length);
    expect(new Set(page.rows.map((row: any) => row.report_id))).toEqual(
      new Set(expected.map((report) => report.metadata.reportId)),
    );
    expect(newsletter.rows.every((row: any) => row.domain === 'example.org')).toBe(true);
  });

  it('lists sources of one service', async () => {
    const page = await getJson('/api/sources?service=password-resets');
    const rows = await getCsv('/api/sources.csv?service=password-resets');

    expect(page.rows.map((row: any) => row.source_ip).sort()).toEqual(RESETS_IPS);
    expect(rows.map((row) => row.source_ip).sort()).toEqual(RESETS_IPS);
  });

  it('lists catalog services as filter options', async () => {
    const options = await getJson('/api/filters');

    expect(options.services).toEqual([
      'corporate-mail',
      'billing',
      'password-resets',
      'newsletter',
      'status-notices',
    ]);
  });

  it('splits messages per day by attribution', async () => {
    const { daily, dailyByAttribution: split } = await getJson('/api/summary?from=2025-11-27');

    expect(split.labels).toEqual(daily.labels);
    for (const [index] of split.labels.entries()) {
      expect(split.attributedPass[index] + split.unattributedPass[index]).toBe(daily.pass[index]);
      expect(split.attributedFail[index] + split.unattributedFail[index]).toBe(daily.fail[index]);
    }
    // Among catalog services only password resets fail in the sample data.
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    expect(sum(split.attributedFail)).toBe(countOf('password resets').messages);
    expect(sum(split.unattributedFail)).toBe(
      countOf('spoofing').messages + countOf('mailing-list forwarding').messages,
    );
  });

  it('splits by attribution the same from rollups and from records', async () => {
    // A result filter makes the overview read records instead of the daily rollups.
    const rolled = (await getJson('/api/summary?from=2025-11-27')).dailyByAttribution;
    const failing = (await getJson('/api/summary?from=2025-11-27&result=fail')).dailyByAttribution;

    expect(failing.attributedFail).toEqual(rolled.attributedFail);
    expect(failing.unattributedFail).toEqual(rolled.unattributedFail);
    expect(failing.attributedPass.every((value: number) => value === 0)).toBe(true);
  });
});
