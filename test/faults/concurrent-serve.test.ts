import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isDovecotInstalled, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { readIngestState } from '../harness/ingest-state.js';
import { listFiles, writeReportFiles, type ReportFiles } from '../harness/report-files.js';
import {
  appendMessages,
  buildReportCorpus,
  findFilingErrors,
  NO_FILING_ERRORS,
  listMessageIds,
  type ReportCorpus,
} from '../harness/report-mailbox.js';
import { startServe, waitFor, type LogLine, type ServeProcess } from '../harness/serve-process.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { createTestDatabase, isCI, postgresAvailable } from '../helpers/database.js';

// In CI a missing PostgreSQL or Dovecot fails this file: postgresAvailable and startDovecot throw.
const hasPostgres = await postgresAvailable();
const runImapTests = isDovecotInstalled() || isCI;

const DONE = 'dmarc-lens/done';
const FAILED = 'dmarc-lens/failed';

describe.skipIf(!hasPostgres || !runImapTests)('two serve processes on one database', () => {
  let dovecot: DovecotServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let folder: string;
  let watchDir: string;
  let corpus: ReportCorpus;
  let files: ReportFiles;
  let servers: ServeProcess[];
  let stopped: CliResult[];

  // One run of the scenario; each test below checks one aspect of its outcome.
  beforeAll(async () => {
    dovecot = await startDovecot();
    database = await createTestDatabase();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-concurrent-'));
    watchDir = path.join(folder, 'watch');
    fs.mkdirSync(watchDir);
    files = writeReportFiles(watchDir, { seed: 72, days: 8 });
    corpus = buildReportCorpus({ seed: 71, days: 12, resends: 8, repeats: 3, junk: 6 });
    const env = {
      DATABASE_URL: database.url,
      WATCH_DIR: watchDir,
      IMAP_HOST: dovecot.host,
      IMAP_PORT: String(dovecot.port),
      IMAP_TLS: 'false',
      IMAP_USER: dovecot.user,
      IMAP_PASSWORD: dovecot.password,
      IMAP_DONE_MAILBOX: DONE,
      IMAP_FAILED_MAILBOX: FAILED,
      ADMIN_PASSWORD: 'a-concurrency-test-password',
    };

    // Both scan the folder as they start. The mail arrives once both wait in IDLE, so that
    // both pollers drain the same messages at the same time.
    servers = await Promise.all([
      startServe({ ...env, DATA_DIR: path.join(folder, 'data-a') }),
      startServe({ ...env, DATA_DIR: path.join(folder, 'data-b') }),
    ]);
    try {
      await Promise.all(servers.map((serve) => waitForIdle(serve)));
      await appendMessages(
        dovecot,
        'INBOX',
        corpus.messages.map((message) => message.bytes),
      );
      const drained = waitFor(
        'both processes to drain the mailbox and the folder',
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
        60_000,
        250,
      );
      await servers[1].whileRunning(servers[0].whileRunning(drained));
    } catch (error) {
      await Promise.all(servers.map((serve) => serve.kill()));
      const logs = servers.map((serve, index) => `serve ${index}:\n${serve.stderrTail(15)}`);
      throw new Error(`${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    }
    stopped = await Promise.all(servers.map((serve) => serve.terminate()));
  }, 120_000);

  afterAll(async () => {
    await database?.drop();
    await dovecot?.stop();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('exits cleanly on SIGTERM', () => {
    expect(stopped.map((result) => result.code)).toEqual([0, 0]);
  });

  it('stores every report once', async () => {
    const state = await readIngestState(database.url);
    expect(state.reports).toBe(corpus.reports + files.reports);
    expect(state.duplicateReports).toBe(0);
    expect(state.recordRows).toBe(corpus.records + files.records);
    expect(state.recordMessages).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.rolledUpReports).toBe(corpus.reports + files.reports);
    expect(state.rolledUpMessages).toBe(corpus.reportedMessages + files.reportedMessages);
    expect(state.rawInputs).toEqual({
      done: corpus.rawInputs - corpus.quarantinedInputs + files.names.length,
      quarantined: corpus.quarantinedInputs,
    });
  });

  it('files every message once', async () => {
    const mailboxes = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
    expect(mailboxes.INBOX).toEqual([]);
    expect(findFilingErrors(corpus, mailboxes[DONE], mailboxes[FAILED])).toEqual(NO_FILING_ERRORS);
  });

  it('moves every file once', () => {
    expect(listFiles(path.join(watchDir, 'done'))).toEqual([...files.names].sort());
    expect(listFiles(path.join(watchDir, 'failed'))).toEqual([]);
  });

  it('logs no errors', () => {
    expect(errorLines(servers[0].logs()), 'errors logged by serve 0').toEqual([]);
    expect(errorLines(servers[1].logs()), 'errors logged by serve 1').toEqual([]);
  });

  // Each process did part of the work, or this would not test sharing it.
  it('splits the work between both', () => {
    // Drains of the mailbox take turns under a lock, so one instance may move every message.
    const moved = servers.map((serve) => movedMessages(serve.logs()));
    expect(moved[0] + moved[1], 'messages moved by both').toBeGreaterThan(0);
    for (const [index, serve] of servers.entries()) {
      expect(
        serve.logs().filter((line) => line.msg === 'Ingested file').length,
        `files ingested by serve ${index}`,
      ).toBeGreaterThan(0);
    }
  });
});

describe.skipIf(!hasPostgres)('two imports of one folder at once', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let folder: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-concurrent-import-'));
  });

  afterAll(async () => {
    await database?.drop();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('stores each report once between them', async () => {
    const files = writeReportFiles(folder, { seed: 73, days: 10 });
    const env = { DATABASE_URL: database.url, LOG_LEVEL: 'error' };

    const results = await Promise.all([
      runCli(['import', folder], env),
      runCli(['import', folder], env),
    ]);

    for (const [index, result] of results.entries()) {
      expect(result.stderr, `stderr of import ${index}`).toBe('');
      expect(result.code, `exit code of import ${index}`).toBe(0);
    }
    // The two summaries split the work: every report is counted as stored by one of them.
    const stored = results.map((result) => summaryNumber(result.stdout, 'Reports stored'));
    expect(stored[0] + stored[1]).toBe(files.reports);
    expect(stored[0], 'reports stored by the first import').toBeGreaterThan(0);
    expect(stored[1], 'reports stored by the second import').toBeGreaterThan(0);

    const state = await readIngestState(database.url);
    expect(state.reports).toBe(files.reports);
    expect(state.duplicateReports).toBe(0);
    expect(state.recordRows).toBe(files.records);
    expect(state.recordMessages).toBe(files.reportedMessages);
    expect(state.reportsNotRolledUp).toBe(0);
    expect(state.rolledUpMessages).toBe(files.reportedMessages);
    expect(state.rawInputs).toEqual({ done: files.names.length });
  }, 120_000);
});

// The poller logs its connection, then drains the empty mailbox and waits in IDLE; the drain
// of an empty mailbox is logged at debug level only, so a second is allowed for it.
async function waitForIdle(serve: ServeProcess): Promise<void> {
  await waitFor('the poller to connect', async () =>
    serve.logs().some((line) => line.msg === 'IMAP connected') ? true : null,
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
}

/** Sums the messages moved to done or failed over the drain summaries of one process. */
function movedMessages(logs: LogLine[]): number {
  return logs
    .filter((line) => line.msg === 'IMAP drain finished')
    .reduce((sum, line) => sum + Number(line.movedToDone) + Number(line.movedToFailed), 0);
}

function errorLines(logs: LogLine[]): string[] {
  return logs
    .filter((line) => line.level >= 50)
    .map((line) => `${line.msg}: ${(line.err as { message?: string } | undefined)?.message ?? ''}`);
}

function summaryNumber(stdout: string, label: string): number {
  const match = new RegExp(`^${label}:\\s+(\\d+)`, 'm').exec(stdout);
  if (!match) throw new Error(`No "${label}" line in the import summary:\n${stdout}`);
  return Number(match[1]);
}
