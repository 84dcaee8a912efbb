import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { renderReportXml } from '../../src/demo/report-xml.js';
import { generateSampleReports, SAMPLE_SENDERS } from '../../src/demo/sample-reports.js';
import { startServe } from '../harness/serve-process.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, postgresAvailable } from '../helpers/database.js';
import { ADMIN_PASSWORD, logIn, sessionHeaders } from '../serve/harness.js';

// Runs the built CLI (`npm run build` first) as a child process, on the real PostgreSQL when
// it is reachable and otherwise on the embedded database in a temporary folder.
const hasPostgres = await postgresAvailable();
const SAMPLE_CATALOG = path.join(import.meta.dirname, '..', '..', 'samples', 'services.yaml');

const reports = generateSampleReports({ seed: 7489, days: 16, endDate: new Date('2025-11-30Z') });

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

describe('analysis commands', () => {
  let folder: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>> | null = null;
  let env: Record<string, string>;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-analysis-cli-'));
    const reportsDir = path.join(folder, 'reports');
    fs.mkdirSync(reportsDir);
    for (const [index, report] of reports.entries()) {
      fs.writeFileSync(path.join(reportsDir, `sample-${index}.xml`), renderReportXml(report));
    }
    fs.copyFileSync(SAMPLE_CATALOG, path.join(folder, 'services.yaml'));

    database = hasPostgres ? await createTestDatabase() : null;
    env = {
      DATABASE_URL: database?.url ?? '',
      DATA_DIR: path.join(folder, 'data'),
      DOMAINS: 'example.com,example.org,example.net',
      SERVICES_FILE: path.join(folder, 'services.yaml'),
      REVERSE_DNS: 'off',
    };
    const imported = await runCli(['import', reportsDir], env);
    if (imported.code !== 0) throw new Error(`import failed: ${imported.stderr}`);
  }, 180_000);

  afterAll(async () => {
    await database?.drop();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('services check names the service and rule of each error', async () => {
    const bad = path.join(folder, 'bad.yaml');
    fs.writeFileSync(
      bad,
      [
        'services:',
        '  - name: billing',
        '    rules:',
        '      ip: [203.0.113.0/24, 300.1.2.0/24]',
        '      provider: sendgird',
        '  - name: resets',
        '    rules:',
        '      dkim: [{ domain: "bad domain" }]',
        '',
      ].join('\n'),
    );

    const result = await runCli(['services', 'check', bad], env);

    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toBe(`${bad}: Service "billing", rule ip[1]: invalid CIDR "300.1.2.0/24"`);
    expect(lines[1]).toMatch(
      new RegExp(`^${bad}: Service "billing", rule provider\\[0\\]: unknown provider "sendgird"`),
    );
    expect(lines[2]).toBe(
      `${bad}: Service "resets", rule dkim[0].domain: invalid DKIM domain "bad domain"`,
    );
    expect(lines[3]).toBe(`${bad}: invalid, 3 errors`);
    expect(result.stdout).toBe('');
  });

  it('services check says what each rule matches', async () => {
    const result = await runCli(['services', 'check'], env);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${env.SERVICES_FILE}: valid, 5 services`);
    const resets = messagesOf('password resets').toLocaleString('en-US');
    expect(result.stdout).toContain(`password-resets: 2 senders, ${resets} messages`);
    expect(result.stdout).toContain(
      `    provider amazon-ses: wins 2 senders, ${resets} messages\n`,
    );
    // SendGrid recognises billing's sources, but its DKIM rule wins them first.
    expect(result.stdout).toMatch(
      / {4}provider sendgrid: wins 0 senders, 0 messages; alone it matches 2 senders/,
    );
    const helpdesk = messagesOf('helpdesk').toLocaleString('en-US');
    expect(result.stdout).toContain(`provider freshdesk: 1 sender, ${helpdesk} messages`);
  });

  it('services check reports JSON', async () => {
    const result = await runCli(['services', 'check', '--format', 'json'], env);
    const check = JSON.parse(result.stdout);

    expect(check.valid).toBe(true);
    expect(check.unattributed.messages).toBe(
      messagesOf('spoofing') + messagesOf('mailing-list forwarding'),
    );
  });

  it('recommend prints every item with its fields as JSON', async () => {
    const result = await runCli(['recommend', '--format', 'json'], env);

    expect(result.code, result.stderr).toBe(0);
    const items = JSON.parse(result.stdout);
    for (const item of items) {
      expect(Object.keys(item).sort()).toEqual([
        'dns_record',
        'domain',
        'evidence',
        'kind',
        'service',
        'severity',
        'summary',
      ]);
    }
    const fix = items.find((item: any) => item.kind === 'fix-service');
    expect(fix).toMatchObject({
      domain: 'example.com',
      service: 'password-resets',
      dns_record: '',
    });
    expect(fix.evidence.messages).toBe(messagesOf('password resets'));
    const kinds = new Set(items.map((item: any) => item.kind));
    expect(kinds).toEqual(
      new Set([
        'fix-service',
        'spoofing',
        'add-to-catalog',
        'step-up-policy',
        'set-subdomain-policy',
        'strict-alignment',
      ]),
    );
  });

  it('recommend prints text for one domain', async () => {
    const result = await runCli(['recommend', '--domain', 'example.net'], env);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Recommendations for 2025-11-01 to 2025-11-30 (UTC):');
    expect(result.stdout).toContain('  [warning] step-up-policy\n');
    expect(result.stdout).toContain(
      '    publish: _dmarc.example.net. TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"',
    );
    expect(result.stdout).not.toContain('example.com');
  });

  it('whatif counts what a policy would reject per service', async () => {
    const result = await runCli(
      ['whatif', '--domain', 'example.com', '--policy', 'v=DMARC1; p=reject', '--format', 'json'],
      env,
    );

    expect(result.code, result.stderr).toBe(0);
    const replay = JSON.parse(result.stdout);
    const resets = replay.services.find((row: any) => row.service === 'password-resets');
    expect(resets.reject).toBe(messagesOf('password resets'));
    // Forwarded mail keeps its override, so only spoofing would be rejected.
    expect(replay.unattributed.reject).toBe(messagesOf('spoofing'));
    expect(replay.unattributed.overridden).toBe(messagesOf('mailing-list forwarding'));
    expect(replay.unattributed.pass).toBe(messagesOf('helpdesk'));
  });

  it('whatif prints a table for a window', async () => {
    const result = await runCli(
      [
        'whatif',
        '--domain',
        'example.com',
        '--policy',
        'v=DMARC1; p=quarantine',
        '--from',
        '2025-11-30',
        '--to',
        '2025-11-30',
      ],
      env,
    );

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('What-if for example.com, 2025-11-30 to 2025-11-30 (UTC)');
    expect(result.stdout).toContain('Candidate: _dmarc.example.com. TXT "v=DMARC1; p=quarantine"');
    expect(result.stdout).toMatch(
      /^service +messages +pass +overridden +delivered +quarantine +reject$/m,
    );
    expect(result.stdout).toMatch(/^password-resets +\d/m);
    expect(result.stdout).toMatch(/^\(unattributed\) +\d/m);
  });

  it('whatif rejects an invalid policy', async () => {
    const result = await runCli(
      ['whatif', '--domain', 'example.com', '--policy', 'v=DMARC1; p=maybe'],
      env,
    );

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('p=maybe is invalid; expected none, quarantine or reject');
  });

  it('export records names the service of each record', async () => {
    const result = await runCli(['export', 'records', '--format', 'json'], env);
    const rows = JSON.parse(result.stdout);

    const ses = rows.filter((row: any) => row.source_ip === '54.240.8.17');
    expect(ses.length).toBeGreaterThan(0);
    expect(new Set(ses.map((row: any) => row.service))).toEqual(new Set(['password-resets']));
  });

  it('recommend follows a changed catalog file without re-importing', async () => {
    fs.appendFileSync(
      env.SERVICES_FILE,
      '\n  - name: helpdesk\n    team: support\n    rules:\n      provider: freshdesk\n',
    );

    const result = await runCli(['recommend', '--domain', 'example.com', '--format', 'json'], env);

    expect(result.code, result.stderr).toBe(0);
    const kinds = JSON.parse(result.stdout).map((item: any) => item.kind);
    expect(kinds).not.toContain('add-to-catalog');
    expect(kinds).toContain('fix-service');
  });

  it('serve refuses to start with an invalid catalog', async () => {
    const bad = path.join(folder, 'bad-serve.yaml');
    fs.writeFileSync(bad, 'services:\n  - name: billing\n    rules:\n      ip: [300.1.2.0/24]\n');

    const result = await runCli(['serve'], {
      ...env,
      SERVICES_FILE: bad,
      HOST: '127.0.0.1',
      PORT: '0',
    });

    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(
      `dmarc-lens: Invalid service catalog ${bad}: Service "billing", rule ip[0]: invalid CIDR "300.1.2.0/24"`,
    );
    expect(result.stderr).not.toContain('dmarc-lens is serving');
  });

  it('serve answers the analysis API', async () => {
    const catalog = path.join(folder, 'serve-services.yaml');
    fs.copyFileSync(SAMPLE_CATALOG, catalog);
    const server = await startServe({ ...env, SERVICES_FILE: catalog, ADMIN_PASSWORD });
    try {
      const baseUrl = `http://127.0.0.1:${server.port}`;
      const session = await logIn(baseUrl, 'admin', ADMIN_PASSWORD);
      const kinds = async () => {
        const response = await fetch(`${baseUrl}/api/recommendations?domain=example.com`, {
          headers: sessionHeaders(session),
        });
        expect(response.status).toBe(200);
        const { rows } = await response.json();
        return rows.map((row: any) => row.kind);
      };

      // The catalog without helpdesk replaced the one with it at start, and the attribution
      // worker recomputes the stored senders, so Freshdesk shows up as unlisted again.
      const deadline = Date.now() + 15_000;
      while (!(await kinds()).includes('add-to-catalog') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await kinds()).toContain('add-to-catalog');
    } finally {
      const stopped = await server.terminate();
      expect(stopped.code).toBe(0);
    }
  });

  it('recommend stops on an invalid catalog file', async () => {
    fs.appendFileSync(env.SERVICES_FILE, '  - name: broken\n    rules:\n      ip: 10.0.0.1/8\n');

    const result = await runCli(['recommend'], env);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `Invalid service catalog ${env.SERVICES_FILE}: Service "broken", rule ip[0]: invalid CIDR "10.0.0.1/8"`,
    );
    expect(result.stdout).toBe('');
  });
});
