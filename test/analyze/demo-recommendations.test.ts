import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Recommendation } from '../../src/analyze/recommendations.js';
import { AnalysisService } from '../../src/analyze/service.js';
import { renderReportXml } from '../../src/demo/report-xml.js';
import { generateSampleReports, SAMPLE_SENDERS } from '../../src/demo/sample-reports.js';
import type { AggregateReport } from '../../src/domain/report.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import {
  openTestRuntime,
  postgresAvailable,
  type DatabaseKind,
  type TestRuntime,
} from '../helpers/database.js';

const SERVICES_FILE = path.join(import.meta.dirname, '..', '..', 'samples', 'services.yaml');
const END_DATE = new Date('2025-11-30T00:00:00Z');
const SEED = 7489;
const DAY_MS = 86_400_000;

/** Counts over the generated reports, by hand, for the senders whose label starts with `label`. */
function handCount(reports: AggregateReport[], label: string) {
  const sender = SAMPLE_SENDERS.find((candidate) => candidate.label.startsWith(label));
  if (!sender) throw new Error(`No sample sender labelled ${label}`);
  const ips = new Set(sender.ips);
  let messages = 0;
  const reporters = new Set<string>();
  const days = new Set<number>();
  for (const report of reports) {
    for (const record of report.records) {
      if (!ips.has(record.sourceIp as string)) continue;
      messages += record.count;
      reporters.add(report.metadata.orgName);
      days.add(report.metadata.dateBegin.getTime());
    }
  }
  return { messages, reporters: reporters.size, days: days.size };
}

function domainCoverage(reports: AggregateReport[], domain: string) {
  const own = reports.filter((report) => report.policy.domain === domain);
  const begins = own.map((report) => report.metadata.dateBegin.getTime());
  return {
    reporters: new Set(own.map((report) => report.metadata.orgName)).size,
    days: Math.round((Math.max(...begins) - Math.min(...begins)) / DAY_MS),
  };
}

function findItem(items: Recommendation[], domain: string, kind: string): Recommendation {
  const item = items.find((candidate) => candidate.domain === domain && candidate.kind === kind);
  if (!item) throw new Error(`No ${kind} recommendation for ${domain}`);
  return item;
}

const kinds: DatabaseKind[] = ['pglite'];
if (await postgresAvailable()) kinds.push('postgres');

describe.each(kinds)('recommendations on the demo data in %s', (kind) => {
  const reports = generateSampleReports({ seed: SEED, endDate: END_DATE });
  let runtime: TestRuntime;
  let analysis: AnalysisService;
  let items: Recommendation[];

  beforeAll(async () => {
    runtime = await openTestRuntime(kind, {
      DOMAINS: 'example.com,example.org,example.net',
      SERVICES_FILE,
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
      log: runtime.log,
      config: runtime.config,
    });
    await analysis.syncCatalogFile();
    await analysis.refresh();
    ({ rows: items } = await analysis.recommendations());
  }, 120_000);

  afterAll(async () => {
    await runtime?.dispose();
  });

  it('shows the expected kinds per domain', () => {
    const kindsOf = (domain: string) =>
      items
        .filter((item) => item.domain === domain)
        .map((item) => item.kind)
        .sort();

    expect(kindsOf('example.com')).toEqual(['add-to-catalog', 'fix-service', 'spoofing']);
    expect(kindsOf('example.net')).toEqual([
      'set-subdomain-policy',
      'step-up-policy',
      'strict-alignment',
    ]);
    expect(kindsOf('example.org')).toEqual([
      'set-subdomain-policy',
      'step-up-policy',
      'strict-alignment',
    ]);
  });

  it('holds example.com back until password resets align DKIM', () => {
    const resets = handCount(reports, 'password resets');
    const item = findItem(items, 'example.com', 'fix-service');

    expect(item.service).toBe('password-resets');
    expect(item.severity).toBe('warning');
    expect(item.evidence).toEqual({
      messages: resets.messages,
      dmarc_pass: 0,
      pass_rate: 0,
      dkim_aligned: 0,
      spf_aligned: 0,
      'failures_dkim-provider-domain': resets.messages,
      'failures_spf-provider-domain': resets.messages,
    });
    expect(item.summary).toContain('DKIM signed with the provider’s domain instead of ours');
    expect(item.summary).toContain('Easy DKIM');
    expect(item.dns_record).toBe('');
  });

  it('recommends adding the unlisted Freshdesk sender', () => {
    const helpdesk = handCount(reports, 'helpdesk through Freshdesk');
    const item = findItem(items, 'example.com', 'add-to-catalog');

    expect(item.evidence).toEqual({
      messages: helpdesk.messages,
      dmarc_pass: helpdesk.messages,
      reporters: helpdesk.reporters,
      days_seen: helpdesk.days,
    });
    expect(item.summary).toContain('provider: freshdesk');
  });

  it('counts spoofing from unattributed sources', () => {
    // Forwarded mail is unattributed too, but receivers delivered it through an override, so
    // it is not counted as spoofing.
    const failing = handCount(reports, 'spoofing').messages;
    const item = findItem(items, 'example.com', 'spoofing');

    expect(item.evidence).toEqual({
      failing_messages: failing,
      delivered_messages: failing,
      header_from_domains: 1,
    });
    expect(item.severity).toBe('warning');
  });

  it('diagnoses forwarded mail as forwarded', async () => {
    const { rows: diagnoses } = await analysis.diagnoses({ domain: 'example.com' });
    const forwarded = diagnoses.filter((row) => row.code === 'forwarded');

    expect(forwarded).toHaveLength(1);
    expect(forwarded[0].messages).toBe(handCount(reports, 'mailing-list forwarding').messages);
    expect(diagnoses.find((row) => row.code === 'spoofing')?.messages).toBe(
      handCount(reports, 'spoofing').messages,
    );
  });

  it('steps example.net up to quarantine', () => {
    const notices = handCount(reports, 'status notices');
    const coverage = domainCoverage(reports, 'example.net');
    const item = findItem(items, 'example.net', 'step-up-policy');

    expect(item.dns_record).toBe(
      '_dmarc.example.net. TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"',
    );
    expect(item.evidence).toMatchObject({
      days_observed: coverage.days,
      reporters: coverage.reporters,
      known_services: 1,
      known_messages: notices.messages,
      lowest_pass_rate: 100,
      would_quarantine: 0,
      would_reject: 0,
    });
    expect(coverage.days).toBe(27);
  });

  it('raises the pct of example.org to 100', () => {
    const newsletter = handCount(reports, 'newsletter');
    const item = findItem(items, 'example.org', 'step-up-policy');

    expect(item.dns_record).toBe(
      '_dmarc.example.org. TXT "v=DMARC1; p=quarantine; sp=quarantine; pct=100; adkim=r; aspf=r"',
    );
    expect(item.evidence.known_messages).toBe(newsletter.messages);
    expect(item.summary).toContain('raise pct from 50 to 100 at p=quarantine');
  });

  it('closes silent subdomains and offers strict alignment', () => {
    expect(findItem(items, 'example.net', 'set-subdomain-policy').dns_record).toBe(
      '_dmarc.example.net. TXT "v=DMARC1; p=none; sp=reject; np=reject; adkim=r; aspf=r"',
    );
    expect(findItem(items, 'example.org', 'set-subdomain-policy').evidence.subdomain_messages).toBe(
      0,
    );
    const strict = findItem(items, 'example.net', 'strict-alignment');
    expect(strict.evidence.lowest_strict_rate).toBe(100);
    expect(strict.dns_record).toBe('_dmarc.example.net. TXT "v=DMARC1; p=none; adkim=s; aspf=s"');
  });

  it('replays example.com under p=reject per service', async () => {
    const { results } = await analysis.whatIf({ domain: 'example.com' }, 'v=DMARC1; p=reject');
    const [result] = results;
    const byService = Object.fromEntries(result.services.map((row) => [row.service, row]));
    const count = (label: string) => handCount(reports, label).messages;
    const spoofing = count('spoofing');
    const forwarded = count('mailing-list forwarding');

    expect(byService['password-resets']).toMatchObject({
      messages: count('password resets'),
      pass: 0,
      reject: count('password resets'),
    });
    expect(byService['corporate-mail']).toMatchObject({ pass: count('corporate mail'), reject: 0 });
    expect(byService.billing).toMatchObject({ pass: count('billing'), reject: 0 });
    // Forwarded mail keeps its override and stays delivered under the candidate policy.
    expect(result.unattributed).toMatchObject({
      messages: spoofing + forwarded + count('helpdesk'),
      pass: count('helpdesk'),
      overridden: forwarded,
      reject: spoofing,
    });
  });

  it('expects half the failing mail quarantined at pct=50', async () => {
    const { results } = await analysis.whatIf(
      { domain: 'example.com' },
      'v=DMARC1; p=quarantine; pct=50',
    );
    const resets = results[0].services.find((row) => row.service === 'password-resets');

    expect(resets?.quarantine).toBe(handCount(reports, 'password resets').messages / 2);
    expect(resets?.delivered).toBe(handCount(reports, 'password resets').messages / 2);
  });

  it('sums services with their diagnoses', async () => {
    const { rows } = await analysis.services();
    const resets = rows.find((row) => row.service === 'password-resets');
    const freshdesk = rows.find((row) => row.kind === 'provider');

    expect(resets).toMatchObject({
      kind: 'service',
      team: 'identity',
      messages: handCount(reports, 'password resets').messages,
      dmarc_fail: handCount(reports, 'password resets').messages,
      providers: ['amazon-ses'],
      rules: [{ rule: 'provider amazon-ses', senders: 2 }],
    });
    expect(resets?.diagnoses.map((entry) => entry.code)).toEqual([
      'dkim-provider-domain',
      'spf-provider-domain',
    ]);
    expect(resets?.daily).toHaveLength(28);
    expect(freshdesk).toMatchObject({
      provider: 'freshdesk',
      messages: handCount(reports, 'helpdesk').messages,
    });
  });
});
