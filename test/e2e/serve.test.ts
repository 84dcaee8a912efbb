import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { HOSTILE_CASES } from '../../src/bench/hostile-cases.js';
import { parseInput } from '../../src/parse/index.js';
import { runCli } from '../helpers/cli.js';
import { AGGREGATE_DIR, corpusAvailable, listFiles } from '../helpers/corpus.js';
import { createTestDatabase, postgresAvailable } from '../helpers/database.js';
import { csvObjects, logIn, sessionHeaders, type Session } from '../serve/harness.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');
const PASSWORD = 'an-end-to-end-test-password';
const hasPostgres = await postgresAvailable();

interface ExpectedReport {
  records: number;
  messages: number;
  pass: number;
}

/** The inputs dropped into the watch folder: the shared corpus when present, else fixtures. */
function inputFiles(): Array<{ source: string; name: string }> {
  if (corpusAvailable()) {
    return listFiles(AGGREGATE_DIR).map((file) => ({
      source: path.join(AGGREGATE_DIR, file),
      name: file.replace(/[\\/]/g, '__'),
    }));
  }
  return fs
    .readdirSync(FIXTURES)
    .map((file) => ({ source: path.join(FIXTURES, file), name: file }));
}

/** Reads every input with the parser directly, keyed the way reports are deduplicated. */
async function expectedReports(files: Array<{ source: string; name: string }>) {
  const reports = new Map<string, ExpectedReport>();
  for (const file of files) {
    const parsed = await parseInput(fs.readFileSync(file.source), file.name);
    for (const report of parsed.reports) {
      const key = [
        report.metadata.orgName,
        report.metadata.reportId,
        report.policy.domain,
        report.metadata.dateBegin.toISOString(),
        report.metadata.dateEnd.toISOString(),
      ].join('|');
      if (reports.has(key)) continue;
      reports.set(key, {
        records: report.records.length,
        messages: report.records.reduce((sum, record) => sum + record.count, 0),
        pass: report.records
          .filter((record) => record.evalDkim === 'pass' || record.evalSpf === 'pass')
          .reduce((sum, record) => sum + record.count, 0),
      });
    }
  }
  return reports;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('serve end to end', () => {
  let folder: string;
  let watchDir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>> | null = null;
  let server: ReturnType<typeof runCli>;
  let baseUrl: string;
  let session: Session;
  const files = inputFiles();

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-e2e-'));
    watchDir = path.join(folder, 'watch');
    fs.mkdirSync(watchDir);
    database = hasPostgres ? await createTestDatabase() : null;

    server = runCli(['serve'], {
      LOG_LEVEL: 'info',
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: path.join(folder, 'data'),
      DATABASE_URL: database?.url ?? '',
      WATCH_DIR: watchDir,
      ADMIN_PASSWORD: PASSWORD,
      DOMAINS: '',
    });
    const port = await waitFor('the server to listen', async () => {
      const match = /"port":(\d+),[^\n]*dmarc-lens is serving/.exec(server.output().stderr);
      return match ? Number(match[1]) : null;
    });
    baseUrl = `http://127.0.0.1:${port}`;
    session = await logIn(baseUrl, 'admin', PASSWORD);
  }, 90_000);

  afterAll(async () => {
    server?.child.kill('SIGTERM');
    const result = await server;
    await database?.drop();
    fs.rmSync(folder, { recursive: true, force: true });
    expect(result.signal).toBeNull();
  }, 60_000);

  it('answers health checks', async () => {
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  });

  it('ingests a dropped folder and serves the counts', async () => {
    const expected = await expectedReports(files);
    for (const file of files) fs.copyFileSync(file.source, path.join(watchDir, file.name));

    // Every file moves to done/ or failed/ once its outcome is committed.
    await waitFor(
      'the watch folder to drain',
      async () => {
        const left = fs.readdirSync(watchDir).filter((name) => !['done', 'failed'].includes(name));
        return left.length === 0 ? true : null;
      },
      120_000,
    );
    const moved =
      fs.readdirSync(path.join(watchDir, 'done')).length +
      fs.readdirSync(path.join(watchDir, 'failed')).length;
    expect(moved).toBe(files.length);

    const response = await fetch(`${baseUrl}/api/reports.csv?pageSize=100000`, {
      headers: sessionHeaders(session),
    });
    expect(response.status).toBe(200);
    const rows = csvObjects(await response.text());
    const actual = new Map(
      rows.map((row) => [
        [row.org_name, row.report_id, row.domain, row.begin, row.end].join('|'),
        {
          records: Number(row.records),
          messages: Number(row.messages),
          pass: Number(row.dmarc_pass),
        },
      ]),
    );
    expect(actual.size).toBe(expected.size);
    for (const [key, counts] of expected) expect(actual.get(key), key).toEqual(counts);

    const summary = await waitFor('the rollups', async () => {
      const body = (await (
        await fetch(`${baseUrl}/api/summary`, { headers: sessionHeaders(session) })
      ).json()) as {
        totals: { reports: number; messages: number };
      };
      return body.totals.reports === expected.size ? body : null;
    });
    const messages = [...expected.values()].reduce((sum, report) => sum + report.messages, 0);
    expect(summary.totals.messages).toBe(messages);
  }, 180_000);

  it('keeps answering after hostile uploads', async () => {
    for (const hostile of HOSTILE_CASES.filter((item) => !item.limits)) {
      const body = new Uint8Array(hostile.build());
      const response = await fetch(
        `${baseUrl}/api/upload?name=${encodeURIComponent(hostile.name)}`,
        {
          method: 'POST',
          headers: { ...sessionHeaders(session), 'content-type': 'application/octet-stream' },
          body,
        },
      );
      expect(response.status, hostile.name).toBeLessThan(500);
      expect((await fetch(`${baseUrl}/healthz`)).status, hostile.name).toBe(200);
    }

    const quarantine = await fetch(`${baseUrl}/api/quarantine`, {
      headers: sessionHeaders(session),
    });
    expect(quarantine.status).toBe(200);
  }, 120_000);
});
