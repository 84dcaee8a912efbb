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
  buildReportCorpus,
  findFilingErrors,
  NO_FILING_ERRORS,
  listMessageIds,
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
});
