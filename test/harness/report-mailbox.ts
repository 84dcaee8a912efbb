import { gzipSync } from 'node:zlib';

import { zipSync } from 'fflate';
import { ImapFlow } from 'imapflow';

import { renderReportXml } from '../../src/demo/report-xml.js';
import { generateSampleReports } from '../../src/demo/sample-reports.js';
import type { AggregateReport } from '../../src/domain/report.js';
import type { DovecotServer } from './dovecot.js';

/** One mail message of the corpus and the mailbox it must end in. */
export interface CorpusMessage {
  /** Message-ID with its angle brackets, as the IMAP envelope returns it. */
  messageId: string;
  bytes: Buffer;
  expected: 'done' | 'failed';
  kind: 'xml' | 'gzip' | 'zip' | 'resend' | 'repeat' | 'junk';
}

/** A mailbox of report messages and what ingesting all of it must store. */
export interface ReportCorpus {
  messages: CorpusMessage[];
  /** Distinct aggregate reports, their `<record>` elements and the sum of their counts. */
  reports: number;
  records: number;
  reportedMessages: number;
  /** Distinct message bytes: messages appended twice byte for byte share one raw input. */
  rawInputs: number;
  /** Raw inputs with no readable report, which end quarantined. */
  quarantinedInputs: number;
}

export interface CorpusOptions {
  seed: number;
  /** Days of sample reports: each day brings about 15 reports (5 reporters, 3 domains). */
  days: number;
  /** Reports sent a second time in a different envelope and container. */
  resends?: number;
  /** Messages appended twice with identical bytes, Message-ID included. */
  repeats?: number;
  /** Messages without a readable report, rotating through the junk kinds below. */
  junk?: number;
}

// Fixed, so that the zip bytes and therefore the raw input hashes repeat from run to run.
const ZIP_MTIME = new Date('2026-01-01T00:00:00Z');
const END_DATE = new Date('2026-11-30T00:00:00Z');

/**
 * Builds a deterministic mailbox: one message per sample report with an xml, gzip or zip
 * attachment in turn, some reports resent in a second envelope, some messages repeated byte
 * for byte, and junk messages that must be quarantined.
 */
export function buildReportCorpus(options: CorpusOptions): ReportCorpus {
  const { seed, days, resends = 0, repeats = 0, junk = 0 } = options;
  const reports = generateSampleReports({ seed, days, endDate: END_DATE });
  const messages: CorpusMessage[] = [];
  const messageId = (label: string) => `<${label}.${seed}@reports.dmarc-lens.test>`;

  const kinds = ['xml', 'gzip', 'zip'] as const;
  for (const [index, report] of reports.entries()) {
    const kind = kinds[index % kinds.length];
    messages.push({
      messageId: messageId(`report-${index}`),
      bytes: reportMessage(report, kind, messageId(`report-${index}`)),
      expected: 'done',
      kind,
    });
  }

  // A resend: the same report in a new message and another container, as reporters do after
  // a delivery they believe failed.
  for (let i = 0; i < resends; i++) {
    const index = Math.floor((i * reports.length) / Math.max(1, resends));
    const id = messageId(`resend-${i}`);
    const kind = kinds[(index + 1) % kinds.length];
    messages.push({
      messageId: id,
      bytes: reportMessage(reports[index], kind, id),
      expected: 'done',
      kind: 'resend',
    });
  }

  for (let i = 0; i < repeats; i++) {
    const original = messages[Math.floor((i * reports.length) / repeats)];
    messages.push({ ...original, kind: 'repeat' });
  }

  for (let i = 0; i < junk; i++) {
    const id = messageId(`junk-${i}`);
    messages.push({ messageId: id, bytes: junkMessage(i, id), expected: 'failed', kind: 'junk' });
  }

  // Interleave the kinds, as a real mailbox receives them, with a fixed shuffle.
  const shuffled = shuffle(messages, seed);
  return {
    messages: shuffled,
    reports: reports.length,
    records: reports.reduce((sum, report) => sum + report.records.length, 0),
    reportedMessages: reports.reduce(
      (sum, report) => sum + report.records.reduce((count, record) => count + record.count, 0),
      0,
    ),
    rawInputs: messages.length - repeats,
    quarantinedInputs: junk,
  };
}

/**
 * Builds `count` large reports of `records` records each, as big receivers send for a busy
 * domain: each is a sample report whose records are repeated, spread over `sources` IPv4
 * addresses.
 */
export function buildLargeReports(
  seed: number,
  count: number,
  records: number,
  sources = 50,
): AggregateReport[] {
  const samples = generateSampleReports({ seed, days: 1, endDate: END_DATE });
  return Array.from({ length: count }, (_, index) => {
    const sample = samples[index % samples.length];
    const large = Array.from({ length: records }, (_, i) => ({
      ...sample.records[i % sample.records.length],
      sourceIp: `10.${index}.${Math.floor((i % sources) / 256)}.${(i % sources) % 256}`,
      count: 1 + (i % 7),
    }));
    const metadata = { ...sample.metadata, reportId: `large-${seed}-${index}` };
    return { ...sample, metadata, records: large };
  });
}

/** Sums the `<record>` elements and message counts of some reports. */
export function reportTotals(reports: AggregateReport[]): { records: number; messages: number } {
  return {
    records: reports.reduce((sum, report) => sum + report.records.length, 0),
    messages: reports.reduce(
      (sum, report) => sum + report.records.reduce((count, record) => count + record.count, 0),
      0,
    ),
  };
}

/** Builds a report message as a reporter's MTA sends it: a text part and the report attached. */
export function reportMessage(
  report: AggregateReport,
  kind: 'xml' | 'gzip' | 'zip',
  messageId: string,
  extraText = '',
): Buffer {
  const { metadata, policy } = report;
  const begin = Math.floor(metadata.dateBegin.getTime() / 1000);
  const end = Math.floor(metadata.dateEnd.getTime() / 1000);
  const base = `${metadata.orgName}!${policy.domain}!${begin}!${end}`;
  const xml = Buffer.from(renderReportXml(report));
  const attachment =
    kind === 'xml'
      ? { filename: `${base}.xml`, contentType: 'text/xml', content: xml }
      : kind === 'gzip'
        ? { filename: `${base}.xml.gz`, contentType: 'application/gzip', content: gzipSync(xml) }
        : {
            filename: `${base}.zip`,
            contentType: 'application/zip',
            content: Buffer.from(zipSync({ [`${base}.xml`]: xml }, { mtime: ZIP_MTIME })),
          };
  return buildMessage({
    from: metadata.email ?? 'dmarc@reporter.test',
    subject: `Report Domain: ${policy.domain} Submitter: ${metadata.orgName} Report-ID: ${metadata.reportId}`,
    messageId,
    text: `This is a DMARC aggregate report for ${policy.domain}.${extraText}`,
    attachment,
  });
}

// Four kinds of mail that reach a rua address without a readable report.
function junkMessage(index: number, messageId: string): Buffer {
  const from = 'postmaster@junk.test';
  switch (index % 4) {
    case 0:
      return buildMessage({ from, subject: 'Out of office', messageId, text: 'Back on Monday.' });
    case 1: {
      // A report cut off halfway through its gzip stream.
      const [report] = generateSampleReports({ seed: 9000 + index, days: 1, endDate: END_DATE });
      const gzip = gzipSync(Buffer.from(renderReportXml(report)));
      const content = gzip.subarray(0, Math.floor(gzip.length / 2));
      const attachment = { filename: 'truncated.xml.gz', contentType: 'application/gzip', content };
      return buildMessage({ from, subject: 'Truncated report', messageId, text: '', attachment });
    }
    case 2: {
      const content = Buffer.from('<?xml version="1.0"?>\n<invoice><total>12</total></invoice>\n');
      const attachment = { filename: 'invoice.xml', contentType: 'text/xml', content };
      return buildMessage({ from, subject: 'Your invoice', messageId, text: '', attachment });
    }
    default: {
      const zip = zipSync({ 'readme.txt': Buffer.from('not a report') }, { mtime: ZIP_MTIME });
      const attachment = {
        filename: 'archive.zip',
        contentType: 'application/zip',
        content: Buffer.from(zip),
      };
      return buildMessage({ from, subject: 'Archive', messageId, text: '', attachment });
    }
  }
}

interface MessageParts {
  from: string;
  subject: string;
  messageId: string;
  text: string;
  attachment?: { filename: string; contentType: string; content: Buffer };
}

/** Builds an RFC 5322 message with CRLF line ends and a base64 attachment. */
export function buildMessage(parts: MessageParts): Buffer {
  const headers = [
    `From: ${parts.from}`,
    'To: dmarc-rua@example.com',
    `Subject: ${parts.subject}`,
    `Message-ID: ${parts.messageId}`,
    'Date: Mon, 30 Nov 2026 06:00:00 +0000',
    'MIME-Version: 1.0',
  ];
  if (!parts.attachment) {
    return Buffer.from(
      [...headers, 'Content-Type: text/plain; charset=utf-8', '', parts.text, ''].join('\r\n'),
    );
  }

  const boundary = `part-${parts.messageId.replace(/[^a-z0-9]/gi, '')}`;
  const { filename, contentType, content } = parts.attachment;
  const encoded = content.toString('base64').replace(/.{76}/g, '$&\r\n');
  const lines = [
    ...headers,
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    parts.text,
    `--${boundary}`,
    `Content-Type: ${contentType}; name="${filename}"`,
    `Content-Disposition: attachment; filename="${filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    encoded,
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

// Fisher-Yates with a linear congruential generator, so that the order depends on the seed only.
function shuffle<T>(items: T[], seed: number): T[] {
  const result = [...items];
  let state = seed >>> 0;
  for (let i = result.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [result[i], result[j]] = [result[j], result[i]];
  }
  return result;
}

/** Connects to the test Dovecot as its mail user. */
export async function connectImap(server: DovecotServer): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: server.user, pass: server.password },
    logger: false,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Appends the messages to a mailbox, creating it when needed. */
export async function appendMessages(
  server: DovecotServer,
  mailbox: string,
  messages: Buffer[],
): Promise<void> {
  const client = await connectImap(server);
  try {
    const path = serverPath(client, mailbox);
    if (path !== 'INBOX') await client.mailboxCreate(path).catch(() => {});
    for (const message of messages) {
      await client.append(path, message);
    }
  } finally {
    await client.logout();
  }
}

/**
 * Message-IDs of the messages in each mailbox, one entry per message. Names use `/` between
 * levels as in IMAP_DONE_MAILBOX; a mailbox that does not exist yet lists as empty.
 */
export async function listMessageIds(
  server: DovecotServer,
  mailboxes: string[],
): Promise<Record<string, string[]>> {
  const client = await connectImap(server);
  const result: Record<string, string[]> = {};
  try {
    const existing = new Set((await client.list()).map((entry) => entry.path));
    for (const mailbox of mailboxes) {
      const path = serverPath(client, mailbox);
      result[mailbox] = existing.has(path) ? await messageIdsOf(client, path) : [];
    }
  } finally {
    await client.logout();
  }
  return result;
}

async function messageIdsOf(client: ImapFlow, path: string): Promise<string[]> {
  const lock = await client.getMailboxLock(path, { readOnly: true });
  try {
    if (!client.mailbox || client.mailbox.exists === 0) return [];
    const messages = await client.fetchAll('1:*', { uid: true, envelope: true });
    return messages.map(
      (message) => message.envelope?.messageId ?? `(no Message-ID, UID ${message.uid})`,
    );
  } finally {
    lock.release();
  }
}

function serverPath(client: ImapFlow, mailbox: string): string {
  if (mailbox.toUpperCase() === 'INBOX') return 'INBOX';
  const delimiter = client.namespace?.delimiter ?? '.';
  return mailbox.split('/').join(delimiter);
}

/** Counts each item of a list, for comparing mailboxes as multisets of Message-IDs. */
export function countBy(items: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** How the done and failed mailboxes differ from what the corpus expects, by Message-ID. */
export interface FilingErrors {
  /** Filed more often than the corpus contains it: a message moved twice. */
  duplicated: string[];
  /** Filed less often than the corpus contains it: still waiting or lost. */
  missing: string[];
  /** In the done mailbox but expected in failed, or the other way round. */
  misfiled: string[];
}

/** Compares the done and failed mailboxes with the corpus; every list is empty when all is well. */
export function findFilingErrors(
  corpus: ReportCorpus,
  done: string[],
  failed: string[],
): FilingErrors {
  const expected = countBy(corpus.messages.map((message) => message.messageId));
  const target = new Map(corpus.messages.map((message) => [message.messageId, message.expected]));
  const filed = countBy([...done, ...failed]);
  const errors: FilingErrors = { duplicated: [], missing: [], misfiled: [] };

  for (const [messageId, count] of expected) {
    const actual = filed.get(messageId) ?? 0;
    if (actual > count) errors.duplicated.push(`${messageId} filed ${actual} times`);
    if (actual < count) errors.missing.push(messageId);
  }
  for (const messageId of filed.keys()) {
    if (!expected.has(messageId)) errors.duplicated.push(`${messageId} not in the corpus`);
  }
  for (const messageId of done) {
    if (target.get(messageId) === 'failed') errors.misfiled.push(`${messageId} in done`);
  }
  for (const messageId of failed) {
    if (target.get(messageId) === 'done') errors.misfiled.push(`${messageId} in failed`);
  }
  return errors;
}

export const NO_FILING_ERRORS: FilingErrors = { duplicated: [], missing: [], misfiled: [] };
