/**
 * Report history for the alert tests: daily aggregate reports built from a few lines, ingested
 * through the real pipeline, rolled up and attributed against a catalog stored in the database.
 */
import { renderReportXml } from '../../src/demo/report-xml.js';
import type { AggregateReport, ReportRecord } from '../../src/domain/report.js';
import { parseCatalog } from '../../src/analyze/catalog.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import { createAlerting, type Alerting } from '../../src/notify/alerting.js';
import type { MailTransport } from '../../src/notify/mailer.js';
import { parseAlertSettings, RULE_IDS, type RuleId } from '../../src/notify/settings.js';
import { attributeAllSenders } from '../../src/store/attribution.js';
import { updateCatalog } from '../../src/store/catalog.js';
import { rollUpAllReports } from '../../src/store/rollups.js';
import { silentLog, type TestRuntime } from '../helpers/database.js';

export const PUBLIC_URL = 'https://dmarc.example.test/lens';
export const ALERT_TO = 'secops@example.com';

/** One source in a daily report: `pass` mail is DKIM-aligned; failing mail is signed by a provider. */
export interface SampleSource {
  ip: string;
  count: number;
  pass: boolean;
  headerFrom?: string;
}

export interface SampleDay {
  day: string;
  domain?: string;
  reporter?: string;
  p?: string;
  sp?: string | null;
  sources: SampleSource[];
}

let reportCounter = 0;

function record(source: SampleSource, domain: string): ReportRecord {
  const headerFrom = source.headerFrom ?? domain;
  return {
    sourceIp: source.ip,
    count: source.count,
    disposition: 'none',
    evalDkim: source.pass ? 'pass' : 'fail',
    evalSpf: source.pass ? 'pass' : 'fail',
    reasons: [],
    headerFrom,
    envelopeFrom: source.pass ? headerFrom : 'bounces.mailer.example.net',
    envelopeTo: null,
    dkim: [
      {
        domain: source.pass ? headerFrom : 'mailer.example.net',
        selector: 's1',
        result: 'pass',
        humanResult: null,
      },
    ],
    spf: [
      {
        domain: source.pass ? headerFrom : 'bounces.mailer.example.net',
        scope: 'mfrom',
        result: 'pass',
        humanResult: null,
      },
    ],
    extensions: null,
  };
}

/** Builds one daily report. */
export function buildReport(sample: SampleDay): AggregateReport {
  const domain = sample.domain ?? 'example.com';
  const begin = new Date(`${sample.day}T00:00:00Z`);
  reportCounter += 1;
  return {
    version: '1.0',
    namespace: null,
    metadata: {
      orgName: sample.reporter ?? 'google.com',
      email: 'noreply-dmarc-support@google.com',
      extraContactInfo: null,
      reportId: `${sample.day}-${domain}-${reportCounter}`,
      dateBegin: begin,
      dateEnd: new Date(begin.getTime() + 86_399_000),
      errors: [],
      generator: null,
    },
    policy: {
      domain,
      adkim: 'r',
      aspf: 'r',
      p: sample.p ?? 'none',
      sp: sample.sp ?? null,
      np: null,
      pct: null,
      fo: null,
      testing: null,
      discoveryMethod: null,
    },
    extensions: null,
    warnings: [],
    records: sample.sources.map((source) => record(source, domain)),
  };
}

/** Ingests daily reports, rolls them up and attributes their senders. */
export async function ingestDays(runtime: TestRuntime, days: SampleDay[]): Promise<void> {
  for (const sample of days) {
    const report = buildReport(sample);
    const outcome = await ingestInput(runtime.ingest, {
      bytes: Buffer.from(renderReportXml(report)),
      name: `${report.metadata.reportId}.xml`,
      source: 'file',
      origin: {},
    });
    if (outcome.status !== 'done') {
      throw new Error(`Test report ${report.metadata.reportId} was not stored: ${outcome.status}`);
    }
  }
  await rollUpAllReports(runtime.db.pool);
  await attributeAllSenders(runtime.db.pool);
}

/** Replaces the stored service catalog and attributes every sender again. */
export async function setCatalog(runtime: TestRuntime, yaml: string): Promise<void> {
  await updateCatalog(runtime.db.pool, () => parseCatalog(yaml));
  await attributeAllSenders(runtime.db.pool);
}

/** Lists the `count` days ending with `last`, oldest first. */
export function daysUpTo(last: string, count: number): string[] {
  const end = Date.parse(`${last}T00:00:00Z`);
  return Array.from({ length: count }, (_, index) =>
    new Date(end - (count - 1 - index) * 86_400_000).toISOString().slice(0, 10),
  );
}

/** Settings that enable only `rule`, with `settings` for it, and no digests. */
export function onlyRule(rule: RuleId, settings: Record<string, unknown> = {}): string {
  const rules: Record<string, unknown> = {};
  for (const id of RULE_IDS) rules[id] = id === rule ? settings : { enabled: false };
  return JSON.stringify({ rules, digests: [] });
}

/** A clock that tests move. */
export class TestClock {
  constructor(private time: Date) {}

  now = (): Date => this.time;

  set(iso: string): void {
    this.time = new Date(iso);
  }

  advanceHours(hours: number): void {
    this.time = new Date(this.time.getTime() + hours * 3_600_000);
  }
}

/** Alerting over a test runtime, sending through `smtpUrl` or `transport`. */
export function testAlerting(
  runtime: TestRuntime,
  options: {
    clock: TestClock;
    settings: string;
    smtpUrl?: string;
    transport?: MailTransport | null;
    alertTo?: string[];
  },
): Alerting {
  return createAlerting({
    pool: runtime.db.pool,
    log: silentLog,
    config: {
      publicUrl: PUBLIC_URL,
      alertTo: options.alertTo ?? [ALERT_TO],
      alertFrom: 'dmarc-lens@example.test',
      smtpUrl: options.smtpUrl,
      alertRulesFile: undefined,
    },
    settings: parseAlertSettings(options.settings),
    now: options.clock.now,
    transport: options.transport,
  });
}
