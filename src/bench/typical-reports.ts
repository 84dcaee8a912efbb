import { gzipSync } from 'node:zlib';

import { createRandom } from '../demo/sample-reports.js';
import { renderRecordXml, renderReportHead, REPORT_TAIL } from '../demo/report-xml.js';
import type { ReportRecord } from '../domain/report.js';

/** One generated report file as a mailbox or a watch folder would receive it. */
export interface TypicalReport {
  /** File name with the extension of its format, unique within one generated set. */
  name: string;
  format: 'xml' | 'gz';
  /** The file's bytes: plain XML, or the XML gzipped. */
  bytes: Buffer;
  /** Size of the XML before compression. */
  xmlBytes: number;
  records: number;
  messages: number;
}

export interface TypicalReportOptions {
  seed?: number;
  /** Distinct senders that the reports draw from; a few heavy senders appear in most reports. */
  senders?: number;
  /** The last day covered; reports spread over the `days` days before it. */
  endDate?: Date;
  days?: number;
  /** Share of reports sent gzipped, as most large receivers do. */
  gzipShare?: number;
}

const REPORTERS = [
  { orgName: 'google.com', email: 'noreply-dmarc-support@google.com' },
  { orgName: 'Outlook.com', email: 'dmarcreport@microsoft.com' },
  { orgName: 'Yahoo', email: 'dmarchelp@yahooinc.com' },
  { orgName: 'Mail.Ru', email: 'dmarc_support@corp.mail.ru' },
  { orgName: 'GMX', email: 'noreply-dmarc@sicher.gmx.net' },
  { orgName: 'comcast.net', email: 'dmarc_report@comcast.net' },
];

const DOMAINS = ['example.com', 'example.org', 'example.net', 'shop.example', 'news.example'];

const PROVIDERS = ['sendgrid.net', 'amazonses.com', 'mcsv.net', 'mailgun.org', 'sparkpostmail.com'];

/** The way a sender's mail authenticates. `pickKind` sets the share of senders of each kind. */
type SenderKind = 'aligned' | 'provider-dkim' | 'provider-only' | 'forwarder' | 'spoofer';

/** A sender before it is placed in a report about one domain. */
interface PoolSender {
  sourceIp: string;
  kind: SenderKind;
  provider: string;
  /** Messages a day, before randomness; heavy senders first. */
  volume: number;
}

/**
 * Generates a set of typical aggregate reports, deterministically from a seed: most carry a
 * handful of records, a few carry hundreds or thousands, as the reports of a mid-sized
 * organisation do. Sources come from one pool, so that the same senders repeat across
 * reporters and days.
 */
export function generateTypicalReports(
  count: number,
  options: TypicalReportOptions = {},
): TypicalReport[] {
  const seed = options.seed ?? 1;
  const random = createRandom(seed);
  const pool = createSenderPool(random, options.senders ?? 5000);
  const days = options.days ?? 60;
  const end = options.endDate ?? new Date('2026-11-30T00:00:00Z');
  const gzipShare = options.gzipShare ?? 0.7;
  const reports: TypicalReport[] = [];

  for (let index = 0; index < count; index++) {
    const reporter = REPORTERS[Math.floor(random() * REPORTERS.length)];
    const domain = DOMAINS[Math.floor(random() * DOMAINS.length)];
    const dayOffset = Math.floor(random() * days);
    const dateBegin = new Date(end.getTime() - dayOffset * 86_400_000);
    const records = pickSenders(random, pool, reportSize(random)).map((sender) =>
      placeSender(random, sender, domain),
    );

    const head = renderReportHead({
      version: '1.0',
      namespace: null,
      metadata: {
        orgName: reporter.orgName,
        email: reporter.email,
        extraContactInfo: null,
        reportId: `typical-${seed}-${index}`,
        dateBegin,
        dateEnd: new Date(dateBegin.getTime() + 86_399_000),
        errors: [],
        generator: null,
      },
      policy: {
        domain,
        adkim: 'r',
        aspf: 'r',
        p: 'none',
        sp: null,
        np: null,
        pct: 100,
        fo: null,
        testing: null,
        discoveryMethod: null,
      },
      extensions: null,
      warnings: [],
    });
    const xml = Buffer.from(head + records.map(renderRecordXml).join('') + REPORT_TAIL);
    const gzipped = random() < gzipShare;
    const stem = `${reporter.orgName.toLowerCase()}!${domain}!${Math.floor(dateBegin.getTime() / 1000)}!${index}`;
    reports.push({
      name: gzipped ? `${stem}.xml.gz` : `${stem}.xml`,
      format: gzipped ? 'gz' : 'xml',
      bytes: gzipped ? gzipSync(xml) : xml,
      xmlBytes: xml.length,
      records: records.length,
      messages: records.reduce((sum, record) => sum + record.count, 0),
    });
  }
  return reports;
}

// Record counts per report: about half of all reports list fewer than five sources, and one in
// thirty lists hundreds to thousands, the daily report of a large receiver for a busy domain.
function reportSize(random: () => number): number {
  const u = random();
  if (u < 0.55) return 1 + Math.floor(random() * 4);
  if (u < 0.85) return 5 + Math.floor(random() * 26);
  if (u < 0.97) return 31 + Math.floor(random() * 270);
  return 301 + Math.floor(random() * 2700);
}

function createSenderPool(random: () => number, size: number): PoolSender[] {
  const pool: PoolSender[] = [];
  for (let rank = 0; rank < size; rank++) {
    pool.push({
      sourceIp: randomIp(random),
      kind: pickKind(random),
      provider: PROVIDERS[Math.floor(random() * PROVIDERS.length)],
      // Zipf-like volumes: the first senders carry most of the mail.
      volume: Math.max(1, Math.round(5000 / (rank + 1) ** 1.1)),
    });
  }
  return pool;
}

function randomIp(random: () => number): string {
  if (random() < 0.15) {
    const group = () => Math.floor(random() * 65535).toString(16);
    return `2001:db8:${group()}:${group()}::${group()}`;
  }
  const octet = () => Math.floor(random() * 256);
  return `${1 + Math.floor(random() * 222)}.${octet()}.${octet()}.${octet()}`;
}

function pickKind(random: () => number): SenderKind {
  const u = random();
  if (u < 0.45) return 'aligned';
  if (u < 0.7) return 'provider-dkim';
  if (u < 0.8) return 'provider-only';
  if (u < 0.88) return 'forwarder';
  return 'spoofer';
}

/**
 * Picks `size` distinct senders, the heavy ones more often. Weighted draws repeat heavy senders,
 * so draws stop after a bounded number of tries and the rest is filled from the pool in order.
 */
function pickSenders(random: () => number, pool: PoolSender[], size: number): PoolSender[] {
  const wanted = Math.min(size, pool.length);
  const chosen = new Set<number>();
  for (let tries = 0; chosen.size < wanted && tries < wanted * 4; tries++) {
    // A draw from a power law over ranks approximates the senders' volume distribution.
    chosen.add(Math.min(pool.length - 1, Math.floor(pool.length * random() ** 3)));
  }
  for (let rank = 0; chosen.size < wanted; rank++) chosen.add(rank);
  return [...chosen].map((rank) => pool[rank]);
}

function placeSender(random: () => number, sender: PoolSender, domain: string): ReportRecord {
  const count = Math.max(1, Math.round(sender.volume * (0.2 + random())));
  const record: ReportRecord = {
    sourceIp: sender.sourceIp,
    count,
    disposition: 'none',
    evalDkim: 'pass',
    evalSpf: 'pass',
    reasons: [],
    headerFrom: domain,
    envelopeFrom: domain,
    envelopeTo: null,
    dkim: [{ domain, selector: 's1', result: 'pass', humanResult: null }],
    spf: [{ domain, scope: 'mfrom', result: 'pass', humanResult: null }],
    extensions: null,
  };
  switch (sender.kind) {
    case 'aligned':
      return record;
    case 'provider-dkim':
      record.evalSpf = 'fail';
      record.envelopeFrom = `bounces.${sender.provider}`;
      record.dkim.push({
        domain: sender.provider,
        selector: 'k1',
        result: 'pass',
        humanResult: null,
      });
      record.spf = [
        { domain: record.envelopeFrom, scope: 'mfrom', result: 'pass', humanResult: null },
      ];
      return record;
    case 'provider-only':
      record.evalDkim = 'fail';
      record.evalSpf = 'fail';
      record.envelopeFrom = `bounces.${sender.provider}`;
      record.dkim = [
        { domain: sender.provider, selector: 'k1', result: 'pass', humanResult: null },
      ];
      record.spf = [
        { domain: record.envelopeFrom, scope: 'mfrom', result: 'pass', humanResult: null },
      ];
      return record;
    case 'forwarder':
      record.evalDkim = 'fail';
      record.evalSpf = 'fail';
      record.envelopeFrom = 'lists.partner.example';
      record.dkim[0].result = 'fail';
      record.spf = [
        { domain: 'lists.partner.example', scope: 'mfrom', result: 'pass', humanResult: null },
      ];
      record.reasons = [{ type: 'local_policy', comment: 'arc=pass' }];
      return record;
    case 'spoofer':
      record.evalDkim = 'fail';
      record.evalSpf = 'fail';
      record.envelopeFrom = 'mail-relay.invalid';
      record.dkim = [];
      record.spf = [
        { domain: 'mail-relay.invalid', scope: 'mfrom', result: 'none', humanResult: null },
      ];
      return record;
  }
}
