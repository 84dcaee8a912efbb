import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRandom } from '../../src/demo/sample-reports.js';
import { isDovecotInstalled, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { committedMessageIds, readIngestState } from '../harness/ingest-state.js';
import {
  appendMessages,
  buildReportCorpus,
  findFilingErrors,
  NO_FILING_ERRORS,
  listMessageIds,
  type ReportCorpus,
} from '../harness/report-mailbox.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { createTestDatabase, isCI, postgresAvailable } from '../helpers/database.js';

// In CI a missing PostgreSQL or Dovecot fails this file: postgresAvailable and startDovecot throw.
const hasPostgres = await postgresAvailable();
const runImapTests = isDovecotInstalled() || isCI;

const DONE = 'dmarc-lens/done';
const FAILED = 'dmarc-lens/failed';

describe.skipIf(!hasPostgres || !runImapTests)('poll --once killed at random points', () => {
  let dovecot: DovecotServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let corpus: ReportCorpus;
  let env: Record<string, string>;

  beforeAll(async () => {
    dovecot = await startDovecot();
    database = await createTestDatabase();
    corpus = buildReportCorpus({ seed: 31, days: 20, resends: 12, repeats: 4, junk: 8 });
    await appendMessages(
      dovecot,
      'INBOX',
      corpus.messages.map((message) => message.bytes),
    );
    env = {
      DATABASE_URL: database.url,
      IMAP_HOST: dovecot.host,
      IMAP_PORT: String(dovecot.port),
      IMAP_TLS: 'false',
      IMAP_USER: dovecot.user,
      IMAP_PASSWORD: dovecot.password,
      IMAP_DONE_MAILBOX: DONE,
      IMAP_FAILED_MAILBOX: FAILED,
      // Junk messages log a warning each; errors are what the final run must not print.
      LOG_LEVEL: 'error',
    };
  });

  afterAll(async () => {
    await database?.drop();
    await dovecot?.stop();
  });

  it('ends with exact totals after kills', async () => {
    const random = createRandom(5417);
    const probe = new pg.Client({ connectionString: database.url });
    await probe.connect();
    const rounds: Array<{ killed: boolean; pendingAtKill: number; leftInInbox: number }> = [];

    try {
      for (let round = 0; round < 10; round++) {
        const run = runCli(['poll', '--once'], env);
        const stored = await countRawInputs(probe);

        // Each round stops after a random number of further inputs. Odd rounds also wait until
        // an input is stored but its transaction still open: the window a crash must not corrupt.
        const target = stored.all + 5 + Math.floor(random() * 40);
        const reached = await pollUntil(run, async () => {
          const now = await countRawInputs(probe);
          return now.all >= target && (round % 2 === 0 || now.pending > 0);
        });
        const pendingAtKill = (await countRawInputs(probe)).pending;
        if (reached) run.child.kill('SIGKILL');
        const result = await run;

        const mailboxes = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
        rounds.push({
          killed: result.signal === 'SIGKILL',
          pendingAtKill,
          leftInInbox: mailboxes.INBOX.length,
        });

        // A message may leave INBOX only after its outcome is committed.
        const committed = await committedMessageIds(database.url);
        const filedEarly = [...mailboxes[DONE], ...mailboxes[FAILED]].filter(
          (messageId) => !committed.has(messageId),
        );
        expect(filedEarly, `messages filed before their commit in round ${round}`).toEqual([]);
      }
    } finally {
      await probe.end();
    }
    const final = await runCli(['poll', '--once'], env);

    // Every round must have been cut short with messages still waiting, and at least one
    // while an input was stored but not yet committed.
    const interrupted = rounds.filter((round) => round.killed && round.leftInInbox > 0);
    expect(interrupted, JSON.stringify(rounds)).toHaveLength(rounds.length);
    expect(
      rounds.some((round) => round.pendingAtKill > 0),
      JSON.stringify(rounds),
    ).toBe(true);
    expect(final.signal).toBeNull();
    expect(final.stderr).toBe('');
    expect(final.code).toBe(0);

    const state = await readIngestState(database.url);
    expect(state.reports).toBe(corpus.reports);
    expect(state.duplicateReports).toBe(0);
    expect(state.reportRecordCount).toBe(corpus.records);
    expect(state.reportMessageCount).toBe(corpus.reportedMessages);
    expect(state.recordRows).toBe(corpus.records);
    expect(state.recordMessages).toBe(corpus.reportedMessages);
    expect(state.reportsNotRolledUp).toBe(0);
    expect(state.rolledUpReports).toBe(corpus.reports);
    expect(state.rolledUpMessages).toBe(corpus.reportedMessages);
    expect(state.rawInputs).toEqual({
      done: corpus.rawInputs - corpus.quarantinedInputs,
      quarantined: corpus.quarantinedInputs,
    });

    const mailboxes = await listMessageIds(dovecot, ['INBOX', DONE, FAILED]);
    expect(mailboxes.INBOX).toEqual([]);
    expect(findFilingErrors(corpus, mailboxes[DONE], mailboxes[FAILED])).toEqual(NO_FILING_ERRORS);
  }, 240_000);
});

async function countRawInputs(client: pg.Client): Promise<{ all: number; pending: number }> {
  const { rows } = await client
    .query<{ all: number; pending: number }>(
      `SELECT count(*)::int AS all, (count(*) FILTER (WHERE status = 'pending'))::int AS pending
         FROM raw_inputs`,
    )
    // The first run creates the tables; before that there is nothing to count.
    .catch(() => ({ rows: [{ all: 0, pending: 0 }] }));
  return rows[0];
}

/**
 * Polls `condition` as fast as the database responds until it holds, returning true, or until
 * the process exits by itself or 30 s pass, returning false.
 */
async function pollUntil(run: Promise<CliResult>, condition: () => Promise<boolean>) {
  let exited = false;
  void run.then(() => (exited = true));
  const deadline = Date.now() + 30_000;
  while (!exited && Date.now() < deadline) {
    if (await condition()) return true;
  }
  return false;
}
