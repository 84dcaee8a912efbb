import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isDovecotInstalled, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { readIngestState } from '../harness/ingest-state.js';
import {
  findPostgresBinaries,
  startPrivatePostgres,
  type PrivatePostgres,
} from '../harness/private-postgres.js';
import { listFiles, writeReportFiles, type ReportFiles } from '../harness/report-files.js';
import {
  appendMessages,
  buildReportCorpus,
  findFilingErrors,
  NO_FILING_ERRORS,
  listMessageIds,
  type ReportCorpus,
} from '../harness/report-mailbox.js';
import { startServe, waitFor, type LogLine } from '../harness/serve-process.js';
import { runCli } from '../helpers/cli.js';
import { isCI } from '../helpers/database.js';

// In CI a missing initdb or Dovecot fails this file: startPrivatePostgres and startDovecot throw.
const runOutageTests = (findPostgresBinaries() !== null && isDovecotInstalled()) || isCI;

const DONE = 'dmarc-lens/done';
const FAILED = 'dmarc-lens/failed';
const OUTAGE_MS = 4000;

describe.skipIf(!runOutageTests)('PostgreSQL stopped while serve drains', () => {
  let cluster: PrivatePostgres;
  let dovecot: DovecotServer;
  let folder: string;
  let watchDir: string;
  let corpus: ReportCorpus;
  let files: ReportFiles;

  beforeAll(async () => {
    cluster = await startPrivatePostgres();
    dovecot = await startDovecot();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-outage-'));
    watchDir = path.join(folder, 'watch');
    fs.mkdirSync(watchDir);

    corpus = buildReportCorpus({ seed: 53, days: 12, resends: 6, repeats: 2, junk: 4 });
    await appendMessages(
      dovecot,
      'INBOX',
      corpus.messages.map((message) => message.bytes),
    );
    files = writeReportFiles(watchDir, { seed: 54, days: 5 });
  });

  afterAll(async () => {
    await dovecot?.stop();
    await cluster?.destroy();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('pauses, retries with backoff and resumes', async () => {
    const serve = await startServe({
      DATABASE_URL: cluster.url(),
      DATA_DIR: path.join(folder, 'data'),
      WATCH_DIR: watchDir,
      IMAP_HOST: dovecot.host,
      IMAP_PORT: String(dovecot.port),
      IMAP_TLS: 'false',
      IMAP_USER: dovecot.user,
      IMAP_PASSWORD: dovecot.password,
      IMAP_DONE_MAILBOX: DONE,
      IMAP_FAILED_MAILBOX: FAILED,
      ADMIN_PASSWORD: 'an-outage-test-password',
    });

    try {
      // Stop the server once both sources are under way, with most of the work still to do.
      const probe = new pg.Client({ connectionString: cluster.url() });
      await probe.connect();
      probe.on('error', () => {});
      await waitFor(
        'serve to be ingesting from both sources',
        async () => {
          const { rows } = await probe.query<{ imap: number; watch: number }>(
            `SELECT count(*) FILTER (WHERE source = 'imap')::int AS imap,
                    count(*) FILTER (WHERE source = 'watch')::int AS watch
               FROM raw_inputs`,
          );
          return rows[0].imap >= 30 && rows[0].watch >= 10 ? true : null;
        },
        30_000,
        10,
      );
      const crashedAt = Date.now();
      await cluster.crash();
      await probe.end().catch(() => {});

      // serve stays up, and nothing moves while the database is down: no message or file is
      // filed without its commit.
      await serve.whileRunning(sleep(500));
      const early = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
      const earlyFiles = listFiles(watchDir);
      await serve.whileRunning(sleep(OUTAGE_MS - 500));
      const late = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
      expect(late).toEqual(early);
      expect(listFiles(watchDir)).toEqual(earlyFiles);
      expect(early.INBOX.length).toBeGreaterThan(0);
      expect(earlyFiles.length).toBeGreaterThan(0);

      await cluster.start();
      const restartedAt = Date.now();
      const drain = waitFor(
        'serve to drain both sources after the restart',
        async () => {
          const state = await readIngestState(cluster.url());
          const inbox = (await listMessageIds(dovecot, ['INBOX'])).INBOX;
          const drained =
            inbox.length === 0 &&
            listFiles(watchDir).length === 0 &&
            (state.rawInputs.pending ?? 0) === 0 &&
            state.reports === corpus.reports + files.reports &&
            state.reportsNotRolledUp === 0;
          return drained ? true : null;
        },
        60_000,
        250,
      );
      await serve.whileRunning(drain);

      // Both intake loops logged their failures with growing delays, then went on.
      const logs = serve.logs();
      const imapRetries = retryDelays(logs, 'IMAP poll failed, retrying', crashedAt);
      const watchRetries = retryDelays(logs, 'Watch folder scan failed; retrying', crashedAt);
      expect(imapRetries.length, JSON.stringify(imapRetries)).toBeGreaterThanOrEqual(2);
      expect(isGrowing(imapRetries), JSON.stringify(imapRetries)).toBe(true);
      expect(watchRetries.length, JSON.stringify(watchRetries)).toBeGreaterThanOrEqual(2);
      expect(isGrowing(watchRetries), JSON.stringify(watchRetries)).toBe(true);
      const resumed = logs.find(
        (line) => line.msg === 'IMAP drain finished' && line.time > restartedAt,
      );
      expect(resumed, 'a drain finished after the database came back').toBeDefined();
      expect(logs.filter((line) => line.msg === 'Reading the input failed unexpectedly')).toEqual(
        [],
      );
    } catch (error) {
      await serve.kill();
      throw new Error(`${(error as Error).message}\nserve log:\n${serve.stderrTail()}`, {
        cause: error,
      });
    }
    const stopped = await serve.terminate();
    expect(stopped.code, serve.stderrTail()).toBe(0);

    const state = await readIngestState(cluster.url());
    expect(state.reports).toBe(corpus.reports + files.reports);
    expect(state.duplicateReports).toBe(0);
    expect(state.recordRows).toBe(corpus.records + files.records);
    expect(state.recordMessages).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.rolledUpMessages).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.rawInputs).toEqual({
      done: corpus.rawInputs - corpus.quarantinedInputs + files.names.length,
      quarantined: corpus.quarantinedInputs,
    });

    const mailboxes = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
    expect(mailboxes.INBOX).toEqual([]);
    expect(findFilingErrors(corpus, mailboxes[DONE], mailboxes[FAILED])).toEqual(NO_FILING_ERRORS);
    expect(listFiles(path.join(watchDir, 'done'))).toEqual([...files.names].sort());
  }, 120_000);
});

describe('embedded database killed while serve drains a folder', () => {
  let folder: string;
  let watchDir: string;
  let dataDir: string;
  let files: ReportFiles;

  beforeAll(() => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-pglite-kill-'));
    watchDir = path.join(folder, 'watch');
    dataDir = path.join(folder, 'data');
    fs.mkdirSync(watchDir);
    files = writeReportFiles(watchDir, { seed: 61, days: 6 });
  });

  afterAll(() => {
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('keeps every committed report across SIGKILL', async () => {
    const env = {
      DATA_DIR: dataDir,
      WATCH_DIR: watchDir,
      DATABASE_URL: '',
      ADMIN_PASSWORD: 'an-embedded-test-password',
    };
    const doneFolder = path.join(watchDir, 'done');
    const filedBeforeKill: number[] = [];

    for (let round = 0; round < 2; round++) {
      const serve = await startServe(env, 60_000);
      const target = listFiles(doneFolder).length + 15;
      const progress = waitFor(
        `${target} files filed as done`,
        async () => (listFiles(doneFolder).length >= target ? true : null),
        30_000,
        20,
      );
      await serve.whileRunning(progress).catch(async (error: Error) => {
        await serve.kill();
        throw new Error(`${error.message}\nserve log:\n${serve.stderrTail()}`, { cause: error });
      });
      const result = await serve.kill();
      expect(result.signal).toBe('SIGKILL');
      expect(errorLines(serve.logs()), `errors logged in round ${round}`).toEqual([]);
      filedBeforeKill.push(listFiles(doneFolder).length);
    }
    expect(listFiles(watchDir).length, 'files left for the last run').toBeGreaterThan(0);

    const last = await startServe(env, 60_000);
    const drained = waitFor(
      'the last run to file every report',
      async () => (listFiles(watchDir).length === 0 ? true : null),
      30_000,
      100,
    );
    await last.whileRunning(drained).catch(async (error: Error) => {
      await last.kill();
      throw new Error(`${error.message}\nserve log:\n${last.stderrTail()}`, { cause: error });
    });
    const stopped = await last.terminate();
    expect(stopped.code).toBe(0);
    expect(errorLines(last.logs()), 'errors logged in the last run').toEqual([]);

    const exported = await runCli(
      ['export', 'reports', '--format', 'json', '--include-foreign'],
      env,
    );
    expect(exported.stderr).toBe('');
    const reports = JSON.parse(exported.stdout) as Array<{ records: number; messages: number }>;
    expect(reports).toHaveLength(files.reports);
    expect(reports.reduce((sum, report) => sum + report.records, 0)).toBe(files.records);
    expect(reports.reduce((sum, report) => sum + report.messages, 0)).toBe(files.reportedMessages);
    expect(listFiles(doneFolder)).toEqual([...files.names].sort());
    expect(filedBeforeKill[1]).toBeGreaterThan(filedBeforeKill[0]);
  }, 180_000);
});

/** Returns the `retryInMs` of each log line with this message logged after `since`. */
function retryDelays(logs: LogLine[], message: string, since: number): number[] {
  return logs
    .filter((line) => line.msg === message && line.time >= since)
    .map((line) => Number(line.retryInMs));
}

/** Error-level log lines as `message: error message`, so that a failure shows what went wrong. */
function errorLines(logs: LogLine[]): string[] {
  return logs
    .filter((line) => line.level >= 50)
    .map((line) => `${line.msg}: ${(line.err as { message?: string } | undefined)?.message ?? ''}`);
}

function isGrowing(delays: number[]): boolean {
  return delays.every((delay, index) => index === 0 || delay > delays[index - 1]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
