import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isDovecotInstalled, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { countDeliveries, readIngestState } from '../harness/ingest-state.js';
import { listFiles, writeReportFiles, type ReportFiles } from '../harness/report-files.js';
import {
  appendMessages,
  buildLargeReports,
  buildReportCorpus,
  findFilingErrors,
  NO_FILING_ERRORS,
  listMessageIds,
  reportMessage,
  type ReportCorpus,
} from '../harness/report-mailbox.js';
import { startServe, waitFor } from '../harness/serve-process.js';
import { createTestDatabase, isCI, postgresAvailable } from '../helpers/database.js';

// In CI a missing PostgreSQL or Dovecot fails this file: postgresAvailable and startDovecot throw.
const hasPostgres = await postgresAvailable();
const runImapTests = isDovecotInstalled() || isCI;

const DONE = 'dmarc-lens/done';
const FAILED = 'dmarc-lens/failed';

describe.skipIf(!hasPostgres || !runImapTests)('serve stopped with SIGTERM', () => {
  let dovecot: DovecotServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let folder: string;
  let watchDir: string;
  let corpus: ReportCorpus;
  let files: ReportFiles;
  let env: Record<string, string>;

  beforeAll(async () => {
    dovecot = await startDovecot();
    database = await createTestDatabase();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-sigterm-'));
    watchDir = path.join(folder, 'watch');
    fs.mkdirSync(watchDir);

    corpus = buildReportCorpus({ seed: 47, days: 10, resends: 6, repeats: 2, junk: 4 });
    await appendMessages(
      dovecot,
      'INBOX',
      corpus.messages.map((message) => message.bytes),
    );
    files = writeReportFiles(watchDir, { seed: 48, days: 5 });
    env = {
      DATABASE_URL: database.url,
      DATA_DIR: path.join(folder, 'data'),
      WATCH_DIR: watchDir,
      IMAP_HOST: dovecot.host,
      IMAP_PORT: String(dovecot.port),
      IMAP_TLS: 'false',
      IMAP_USER: dovecot.user,
      IMAP_PASSWORD: dovecot.password,
      IMAP_DONE_MAILBOX: DONE,
      IMAP_FAILED_MAILBOX: FAILED,
      ADMIN_PASSWORD: 'a-sigterm-test-password',
    };
  });

  afterAll(async () => {
    await database?.drop();
    await dovecot?.stop();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('finishes the input in hand, then a restart finishes the rest', async () => {
    const probe = new pg.Client({ connectionString: database.url });
    await probe.connect();
    let stopped: Awaited<ReturnType<Awaited<ReturnType<typeof startServe>>['terminate']>>;
    let pendingAtSignal: number;
    try {
      const first = await startServe(env);

      // Signal once both sources are well under way and an input is in hand.
      pendingAtSignal = await waitFor(
        'serve to be ingesting from both sources',
        async () => {
          const { rows } = await probe.query<{ imap: number; watch: number; pending: number }>(
            `SELECT count(*) FILTER (WHERE source = 'imap')::int AS imap,
                    count(*) FILTER (WHERE source = 'watch')::int AS watch,
                    count(*) FILTER (WHERE status = 'pending')::int AS pending
               FROM raw_inputs`,
          );
          const { imap, watch, pending } = rows[0];
          return imap >= 20 && watch >= 10 && pending > 0 ? pending : null;
        },
        30_000,
        5,
      );
      stopped = await first.terminate();
      const logs = first.logs().map((line) => line.msg);
      expect(logs).toContain('Shutting down: finishing the input in hand');
      expect(logs).toContain('IMAP poller stopped');
      expect(logs.at(-1)).toBe('Stopped');
    } finally {
      await probe.end();
    }

    expect(pendingAtSignal).toBeGreaterThan(0);
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(0);
    expect(stopped.stopMs).toBeLessThan(5000);

    // Everything read was committed and filed: each delivery matches one moved message or file.
    const afterStop = await readIngestState(database.url);
    expect(afterStop.rawInputs.pending ?? 0).toBe(0);
    const mailboxes = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
    const moved = [
      ...listFiles(path.join(watchDir, 'done')),
      ...listFiles(path.join(watchDir, 'failed')),
    ];
    const deliveries = await countDeliveries(database.url);
    expect(deliveries.imap).toBe(mailboxes[DONE].length + mailboxes[FAILED].length);
    expect(deliveries.watch).toBe(moved.length);

    // Work was left for the restart in both sources.
    expect(mailboxes.INBOX.length).toBeGreaterThan(0);
    expect(listFiles(watchDir).length).toBeGreaterThan(0);

    const second = await startServe(env);
    await waitFor(
      'the restarted serve to drain both sources and roll everything up',
      async () => {
        const state = await readIngestState(database.url);
        const inbox = (await listMessageIds(dovecot, ['INBOX'])).INBOX;
        const done =
          inbox.length === 0 &&
          listFiles(watchDir).length === 0 &&
          (state.rawInputs.pending ?? 0) === 0 &&
          state.reports === corpus.reports + files.reports &&
          state.reportsNotRolledUp === 0;
        return done ? true : null;
      },
      45_000,
      250,
    );
    const restarted = await second.terminate();
    expect(restarted.code).toBe(0);
    expect(second.logs().filter((line) => line.level >= 50)).toEqual([]);

    const state = await readIngestState(database.url);
    expect(state.reports).toBe(corpus.reports + files.reports);
    expect(state.duplicateReports).toBe(0);
    expect(state.recordRows).toBe(corpus.records + files.records);
    expect(state.recordMessages).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.reportMessageCount).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.rolledUpMessages).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.rawInputs).toEqual({
      done: corpus.rawInputs - corpus.quarantinedInputs + files.names.length,
      quarantined: corpus.quarantinedInputs,
    });

    const final = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
    expect(final.INBOX).toEqual([]);
    expect(findFilingErrors(corpus, final[DONE], final[FAILED])).toEqual(NO_FILING_ERRORS);
    expect(listFiles(path.join(watchDir, 'done'))).toEqual([...files.names].sort());
    expect(listFiles(path.join(watchDir, 'failed'))).toEqual([]);
  }, 120_000);

  it('stops within seconds after reports with many sources', async () => {
    // A busy domain's daily reports can name thousands of source addresses. The work that
    // follows their ingest (rollups, attribution, alert rules) must not hold up a shutdown.
    const other = await createTestDatabase();
    const mailbox = 'many-sources';
    try {
      const reports = buildLargeReports(91, 4, 10_000, 10_000);
      await appendMessages(
        dovecot,
        mailbox,
        reports.map((report, index) =>
          reportMessage(report, 'gzip', `<many-${index}@reports.dmarc-lens.test>`),
        ),
      );
      const serve = await startServe({
        ...env,
        DATABASE_URL: other.url,
        DATA_DIR: path.join(folder, 'data-many'),
        WATCH_DIR: '',
        IMAP_MAILBOX: mailbox,
        IMAP_DONE_MAILBOX: `${mailbox}/done`,
        IMAP_FAILED_MAILBOX: `${mailbox}/failed`,
      });
      const drained = waitFor(
        'serve to store the reports',
        async () => {
          const state = await readIngestState(other.url);
          return state.reports === reports.length && state.reportsNotRolledUp === 0 ? true : null;
        },
        60_000,
        250,
      );
      await serve.whileRunning(drained);

      // docker stop waits 10 s by default after SIGTERM, then kills the container.
      const stopped = await Promise.race([serve.terminate(), sleep(10_000).then(() => null)]);
      if (!stopped) {
        const busy = await activeQueries(other.url);
        await serve.kill();
        throw new Error(
          `serve still running 10 s after SIGTERM; queries still running:\n${busy.join('\n')}`,
        );
      }
      expect(stopped.code).toBe(0);
    } finally {
      await other.drop();
    }
  }, 120_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lists the queries still running on a database, shortened, with how long each has run. */
async function activeQueries(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ seconds: number; query: string }>(
      `SELECT extract(epoch FROM now() - query_start)::int AS seconds,
              regexp_replace(left(query, 200), '\\s+', ' ', 'g') AS query
         FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`,
    );
    return rows.map((row) => `${row.seconds} s: ${row.query}`);
  } finally {
    await client.end();
  }
}
