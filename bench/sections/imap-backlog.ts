import { ImapFlow } from 'imapflow';

import { generateTypicalReports, type TypicalReport } from '../../src/bench/typical-reports.js';
import {
  DovecotMissingError,
  isDovecotInstalled,
  startDovecot,
  type DovecotServer,
} from '../../test/harness/dovecot.js';
import { openChildDatabase, warmUpChildDatabase, type BenchContext } from '../lib/context.js';
import { expectExit, runCli, timed } from '../lib/measure.js';

const SECTION = 'IMAP backlog';

/**
 * Drains a backlog of report mails in a private Dovecot with `dmarc-lens poll --once` in a
 * child process: messages/s and peak RSS.
 */
export async function benchImapBacklog(context: BenchContext): Promise<void> {
  if (!isDovecotInstalled()) throw new DovecotMissingError();
  const count = context.quick ? 50 : 3000;
  const reports = generateTypicalReports(count, { seed: context.seed + 300, gzipShare: 1 });
  const records = reports.reduce((sum, report) => sum + report.records, 0);

  const server = await startDovecot();
  const database = await openChildDatabase(context, 'imap');
  try {
    await warmUpChildDatabase(context, database);
    context.progress(`imap: appending ${count} messages with ${records} records`);
    const append = await timed(() => appendMessages(server, reports));

    context.progress(`imap: draining with poll --once on ${database.kind}`);
    const run = await runCli(
      ['poll', '--once'],
      {
        ...database.env,
        IMAP_HOST: server.host,
        IMAP_PORT: String(server.port),
        IMAP_TLS: 'false',
        IMAP_USER: server.user,
        IMAP_PASSWORD: server.password,
      },
      context.workDir,
    );
    expectExit(run, 0, 'poll --once');
    const moved = Number(/Moved to dmarc-lens\/done: (\d+)/.exec(run.stdout)?.[1]);
    if (moved !== count) {
      throw new Error(
        `poll --once moved ${moved} messages to done, expected ${count}:\n${run.stdout}`,
      );
    }

    const add = (name: string, value: number, unit: string, note?: string) =>
      context.results.add({ section: SECTION, name, value, unit, note });
    add('messages', count, 'messages', 'one gzipped report each');
    add('records', records, 'records');
    add(
      'append to Dovecot',
      count / append.seconds,
      'messages/s',
      'imapflow append, one at a time',
    );
    add(`poll --once on ${database.kind}: time`, run.seconds, 's');
    add(`poll --once on ${database.kind}: messages/s`, count / run.seconds, 'messages/s');
    add(`poll --once on ${database.kind}: records/s`, records / run.seconds, 'records/s');
    add(`poll --once on ${database.kind}: peak RSS`, run.maxRssMib, 'MiB');
  } finally {
    await database.dispose();
    await server.stop();
  }
}

async function appendMessages(server: DovecotServer, reports: TypicalReport[]): Promise<void> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user: server.user, pass: server.password },
    logger: false,
  });
  await client.connect();
  try {
    for (const [index, report] of reports.entries()) {
      await client.append('INBOX', reportMessage(report, index));
    }
  } finally {
    await client.logout();
  }
}

/** Builds a report mail as large receivers send them: a text part and the gzipped report. */
function reportMessage(report: TypicalReport, index: number): Buffer {
  const boundary = `bench-boundary-${index}`;
  const attachment = report.bytes.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      'From: noreply-dmarc-support@google.com',
      'To: dmarc-reports@example.com',
      `Subject: Report Domain: example.com Submitter: google.com Report-ID: <bench-${index}>`,
      'Date: Mon, 30 Nov 2026 10:00:00 +0000',
      `Message-ID: <bench-${index}@bench.example>`,
      'MIME-Version: 1.0',
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'This is an aggregate report from google.com.',
      `--${boundary}`,
      `Content-Type: application/gzip; name="${report.name}"`,
      `Content-Disposition: attachment; filename="${report.name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      attachment,
      `--${boundary}--`,
      '',
    ].join('\r\n'),
  );
}
