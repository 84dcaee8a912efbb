import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

import { createRandom } from '../../src/demo/sample-reports.js';
import type { ReportRecord } from '../../src/domain/report.js';
import { senderKey } from '../../src/store/reports.js';

/** The shape of the generated history. */
export interface HistoryOptions {
  records: number;
  days: number;
  domains: number;
  /** Distinct senders over all domains; a few hundred carry most of the mail. */
  senders: number;
  seed: number;
  /** The last day of the history (UTC midnight). */
  lastDay: Date;
}

export interface HistoryTotals {
  reports: number;
  records: number;
  messages: number;
}

// Reporters, each with its share of a domain's mail relative to the mean.
const REPORTERS = [
  { orgName: 'google.com', email: 'noreply-dmarc-support@google.com', share: 1.8 },
  { orgName: 'Outlook.com', email: 'dmarcreport@microsoft.com', share: 1.3 },
  { orgName: 'Yahoo', email: 'dmarchelp@yahooinc.com', share: 0.9 },
  { orgName: 'Mail.Ru', email: 'dmarc_support@corp.mail.ru', share: 0.7 },
  { orgName: 'GMX', email: 'noreply-dmarc@sicher.gmx.net', share: 0.7 },
  { orgName: 'comcast.net', email: 'dmarc_report@comcast.net', share: 0.6 },
];

const POLICIES = ['none', 'none', 'quarantine', 'reject'];
const PROVIDERS = ['sendgrid.net', 'amazonses.com', 'mcsv.net', 'mailgun.org', 'sparkpostmail.com'];

/** A sender of one domain, with its COPY columns after `count` prepared once. */
interface Sender {
  sourceIp: string;
  /** Chance that a report from a reporter with share 1 lists this sender on a given day. */
  weight: number;
  volume: number;
  pass: boolean;
  /** `\t<eval_dkim>\t<eval_spf>\t<dmarc_pass>\t…\t<sender_key>\n`: the row after disposition. */
  tail: string;
}

interface Domain {
  name: string;
  policy: string;
  senders: Sender[];
}

/**
 * Loads a deterministic history of reports straight into `raw_inputs`, `reports` and
 * `records` with COPY: one report per day, reporter and domain, each listing the senders that
 * reporter saw that day. Heavy senders appear in nearly every report and the long tail rarely,
 * so a few tens of thousands of senders repeat across days and reporters. Reports are left
 * for the roll-up to add to the daily tables.
 */
export async function loadHistory(pool: pg.Pool, options: HistoryOptions): Promise<HistoryTotals> {
  const random = createRandom(options.seed);
  const domains = createDomains(random, options);
  const scale = inclusionScale(domains, options);
  const days = Array.from(
    { length: options.days },
    (_, index) => new Date(options.lastDay.getTime() - (options.days - 1 - index) * 86_400_000),
  );

  // One raw input per report, as if each had come in its own mail.
  const reportCount = days.length * REPORTERS.length * domains.length;
  await pool.query(
    `INSERT INTO raw_inputs (sha256, byte_size, content_encoding, content, name, source, status,
                             reports_stored, processed_at)
     SELECT sha256(convert_to('bench-history-' || n, 'UTF8')), 0, 'identity', '', 'history-' || n || '.xml',
            'file', 'done', 1, now()
       FROM generate_series(1, $1::int) AS n`,
    [reportCount],
  );
  const rawIds = (await pool.query<{ id: number }>('SELECT id FROM raw_inputs ORDER BY id')).rows;

  let reportRows = '';
  let index = 0;
  for (const day of days) {
    for (const reporter of REPORTERS) {
      for (const domain of domains) {
        const reportId = `history-${options.seed}-${index}`;
        const end = new Date(day.getTime() + 86_399_000).toISOString();
        reportRows +=
          `${rawIds[index].id}\t${reportId}.xml\t${reporter.orgName}\t${reporter.email}\t${reportId}` +
          `\t${day.toISOString()}\t${end}\t1.0\t${domain.name}\tr\tr\t${domain.policy}\t100\tf\n`;
        index += 1;
      }
    }
  }
  await copyText(
    pool,
    `COPY reports (raw_input_id, document, reporter_org, reporter_email, report_id, date_begin,
                   date_end, version, domain, policy_adkim, policy_aspf, policy_p, policy_pct,
                   is_foreign) FROM STDIN`,
    (async function* () {
      yield reportRows;
    })(),
  );
  const reportIds = (await pool.query<{ id: number }>('SELECT id FROM reports ORDER BY id')).rows;

  const totals = {
    recordCount: [] as number[],
    messageCount: [] as number[],
    passCount: [] as number[],
  };
  const rows = generateRecordRows(random, days, domains, scale, reportIds, totals);
  await copyText(pool, `COPY records (${RECORD_COPY_COLUMNS}) FROM STDIN`, rows);

  await pool.query(
    `UPDATE reports SET record_count = totals.records, message_count = totals.messages,
                        pass_count = totals.pass
       FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[])
         AS totals (id, records, messages, pass)
      WHERE reports.id = totals.id`,
    [reportIds.map((row) => row.id), totals.recordCount, totals.messageCount, totals.passCount],
  );
  return {
    reports: reportCount,
    records: totals.recordCount.reduce((sum, value) => sum + value, 0),
    messages: totals.messageCount.reduce((sum, value) => sum + value, 0),
  };
}

const RECORD_COPY_COLUMNS = `report_ref, date_begin, domain, reporter_org, is_foreign, source_ip,
  count, disposition, eval_dkim, eval_spf, dmarc_pass, header_from, envelope_from, envelope_to,
  dkim, spf, reasons, extensions, sender_key`;

/** Yields the records of every report in COPY text, about 1 MiB at a time. */
async function* generateRecordRows(
  random: () => number,
  days: Date[],
  domains: Domain[],
  scale: number,
  reportIds: Array<{ id: number }>,
  totals: { recordCount: number[]; messageCount: number[]; passCount: number[] },
): AsyncGenerator<string> {
  let chunk = '';
  let index = 0;
  for (const day of days) {
    const dayText = day.toISOString();
    for (const reporter of REPORTERS) {
      for (const domain of domains) {
        const prefix = `${reportIds[index].id}\t${dayText}\t${domain.name}\t${reporter.orgName}\tf\t`;
        let records = 0;
        let messages = 0;
        let pass = 0;
        for (const sender of domain.senders) {
          if (random() >= sender.weight * reporter.share * scale) continue;
          const count = Math.max(1, Math.round(sender.volume * reporter.share * (0.5 + random())));
          const disposition = sender.pass ? 'none' : domain.policy;
          chunk += `${prefix}${sender.sourceIp}\t${count}\t${disposition}${sender.tail}`;
          records += 1;
          messages += count;
          if (sender.pass) pass += count;
        }
        totals.recordCount.push(records);
        totals.messageCount.push(messages);
        totals.passCount.push(pass);
        index += 1;
        if (chunk.length > 1024 * 1024) {
          yield chunk;
          chunk = '';
        }
      }
    }
  }
  if (chunk !== '') yield chunk;
}

async function copyText(pool: pg.Pool, sql: string, chunks: AsyncIterable<string>): Promise<void> {
  const client = await pool.connect();
  try {
    const stream = client.query(copyFrom(sql));
    for await (const chunk of chunks) {
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
    await finished(stream);
  } finally {
    client.release();
  }
}

function createDomains(random: () => number, options: HistoryOptions): Domain[] {
  // Providers' sending addresses are shared by every domain that uses the provider.
  const providerIps = Array.from({ length: Math.max(50, Math.floor(options.senders / 15)) }, () =>
    randomIp(random),
  );
  const perDomain = Math.ceil(options.senders / options.domains);
  const domains: Domain[] = [];
  for (let d = 0; d < options.domains; d++) {
    const name = d === 0 ? 'example.com' : `brand${d}.example`;
    const senders: Sender[] = [];
    for (let rank = 0; rank < perDomain; rank++) {
      senders.push(createSender(random, name, rank / perDomain, rank, providerIps));
    }
    domains.push({ name, policy: POLICIES[d % POLICIES.length], senders });
  }
  return domains;
}

function createSender(
  random: () => number,
  domain: string,
  tailShare: number,
  rank: number,
  providerIps: string[],
): Sender {
  const u = random();
  // Most spoofers and forwarders are in the long tail, and the head is the domain's own services.
  const kind =
    tailShare > 0.5 && u < 0.5
      ? u < 0.35
        ? 'spoofer'
        : 'forwarder'
      : u < 0.55
        ? 'aligned'
        : u < 0.85
          ? 'provider-dkim'
          : 'provider-only';
  const provider = PROVIDERS[Math.floor(random() * PROVIDERS.length)];
  const usesProvider = kind === 'provider-dkim' || kind === 'provider-only';
  const sourceIp = usesProvider
    ? providerIps[Math.floor(random() * providerIps.length)]
    : randomIp(random);

  const record: ReportRecord = {
    sourceIp,
    count: 0,
    disposition: null,
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
  if (usesProvider) {
    record.evalSpf = 'fail';
    record.envelopeFrom = `bounces.${provider}`;
    record.spf = [
      { domain: record.envelopeFrom, scope: 'mfrom', result: 'pass', humanResult: null },
    ];
    const providerSignature = {
      domain: provider,
      selector: 'k1',
      result: 'pass',
      humanResult: null,
    };
    if (kind === 'provider-only') {
      record.evalDkim = 'fail';
      record.dkim = [providerSignature];
    } else {
      record.dkim.push(providerSignature);
    }
  } else if (kind === 'forwarder') {
    record.evalDkim = 'fail';
    record.evalSpf = 'fail';
    record.envelopeFrom = 'lists.partner.example';
    record.dkim[0].result = 'fail';
    record.spf = [
      { domain: 'lists.partner.example', scope: 'mfrom', result: 'pass', humanResult: null },
    ];
    record.reasons = [{ type: 'local_policy', comment: 'arc=pass' }];
  } else if (kind === 'spoofer') {
    record.evalDkim = 'fail';
    record.evalSpf = 'fail';
    record.envelopeFrom = 'mail-relay.invalid';
    record.dkim = [];
    record.spf = [
      { domain: 'mail-relay.invalid', scope: 'mfrom', result: 'none', humanResult: null },
    ];
  }

  const dkim = JSON.stringify(record.dkim);
  const spf = JSON.stringify(record.spf);
  const pass = record.evalDkim === 'pass' || record.evalSpf === 'pass';
  return {
    sourceIp,
    // Zipf-like: the sender of rank r appears about 1/(r+1)^0.8 as often as the first.
    weight: 1 / (rank + 1) ** 0.8,
    volume: Math.max(1, Math.round(3000 / (rank + 1) ** 0.9)),
    pass,
    tail:
      `\t${record.evalDkim}\t${record.evalSpf}\t${pass ? 't' : 'f'}\t${record.headerFrom}` +
      `\t${record.envelopeFrom}\t\\N\t${dkim}\t${spf}\t${JSON.stringify(record.reasons)}\t\\N` +
      `\t${senderKey(record, dkim, spf)}\n`,
  };
}

/**
 * Finds the factor on the senders' weights that gives the wanted number of records: the
 * expected count is a sum of capped chances, which grows with the factor, so a bisection works.
 */
function inclusionScale(domains: Domain[], options: HistoryOptions): number {
  const perDay = (scale: number) => {
    let expected = 0;
    for (const reporter of REPORTERS) {
      for (const domain of domains) {
        for (const sender of domain.senders) {
          expected += Math.min(1, sender.weight * reporter.share * scale);
        }
      }
    }
    return expected;
  };
  const wanted = options.records / options.days;
  let low = 0;
  let high = 1;
  while (perDay(high) < wanted && high < 1e9) high *= 2;
  for (let step = 0; step < 40; step++) {
    const middle = (low + high) / 2;
    if (perDay(middle) < wanted) low = middle;
    else high = middle;
  }
  return high;
}

function randomIp(random: () => number): string {
  if (random() < 0.15) {
    const group = () => Math.floor(random() * 65535).toString(16);
    return `2001:db8:${group()}:${group()}::${group()}`;
  }
  const octet = () => Math.floor(random() * 256);
  return `${1 + Math.floor(random() * 222)}.${octet()}.${octet()}.${octet()}`;
}
