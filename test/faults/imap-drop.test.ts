import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  findImapPids,
  isDovecotInstalled,
  startDovecot,
  type DovecotServer,
} from '../harness/dovecot.js';
import { killDuringFetch, waitForNewImapPid, type FetchKill } from '../harness/imap-process.js';
import { readIngestState } from '../harness/ingest-state.js';
import {
  appendMessages,
  buildLargeReports,
  buildReportCorpus,
  findFilingErrors,
  listMessageIds,
  NO_FILING_ERRORS,
  reportMessage,
  reportTotals,
  type ReportCorpus,
} from '../harness/report-mailbox.js';
import { startServe, waitFor } from '../harness/serve-process.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, isCI, postgresAvailable } from '../helpers/database.js';

// In CI a missing PostgreSQL or Dovecot fails this file: postgresAvailable and startDovecot throw.
const hasPostgres = await postgresAvailable();
const runImapTests = isDovecotInstalled() || isCI;

// Records per large report: about 8 MB of XML, sent uncompressed, so that fetching one takes long
// enough to cut the connection in the middle of it.
const LARGE_REPORT_RECORDS = 12_000;

/**
 * A mailbox of small report messages and junk with large uncompressed reports spread among
 * them, and the totals that ingesting all of it must store.
 */
function buildMailbox(seed: number, mailbox: string) {
  const corpus = buildReportCorpus({ seed, days: 3, resends: 2, junk: 2 });
  const large = buildLargeReports(seed + 1, 5, LARGE_REPORT_RECORDS);
  const largeMessages = large.map((report, index) => ({
    messageId: `<large-${index}.${seed}@reports.dmarc-lens.test>`,
    bytes: reportMessage(report, 'xml', `<large-${index}.${seed}@reports.dmarc-lens.test>`),
    expected: 'done' as const,
    kind: 'xml' as const,
  }));

  // One large message after every few small ones, so that each drain soon meets one.
  const messages = [...corpus.messages];
  for (const [index, message] of largeMessages.entries()) {
    messages.splice(index * 8 + 3, 0, message);
  }
  const totals = reportTotals(large);
  const combined: ReportCorpus = {
    messages,
    reports: corpus.reports + large.length,
    records: corpus.records + totals.records,
    reportedMessages: corpus.reportedMessages + totals.messages,
    rawInputs: corpus.rawInputs + large.length,
    quarantinedInputs: corpus.quarantinedInputs,
  };
  const smallestLarge = Math.min(...largeMessages.map((message) => message.bytes.length));
  return { corpus: combined, smallestLarge, mailbox };
}

function imapEnv(dovecot: DovecotServer, mailbox: string, databaseUrl: string) {
  return {
    DATABASE_URL: databaseUrl,
    IMAP_HOST: dovecot.host,
    IMAP_PORT: String(dovecot.port),
    IMAP_TLS: 'false',
    IMAP_USER: dovecot.user,
    IMAP_PASSWORD: dovecot.password,
    IMAP_MAILBOX: mailbox,
    IMAP_DONE_MAILBOX: `${mailbox}/done`,
    IMAP_FAILED_MAILBOX: `${mailbox}/failed`,
  };
}

async function expectExactOutcome(
  dovecot: DovecotServer,
  databaseUrl: string,
  { corpus, mailbox }: { corpus: ReportCorpus; mailbox: string },
) {
  const state = await readIngestState(databaseUrl);
  expect(state.reports).toBe(corpus.reports);
  expect(state.duplicateReports).toBe(0);
  expect(state.recordRows).toBe(corpus.records);
  expect(state.recordMessages).toBe(corpus.reportedMessages);
  expect(state.rolledUpMessages).toBe(corpus.reportedMessages);
  expect(state.rawInputs).toEqual({
    done: corpus.rawInputs - corpus.quarantinedInputs,
    quarantined: corpus.quarantinedInputs,
  });

  const done = `${mailbox}/done`;
  const failed = `${mailbox}/failed`;
  const mailboxes = await listMessageIds(dovecot, [mailbox, done, failed]);
  expect(mailboxes[mailbox]).toEqual([]);
  expect(findFilingErrors(corpus, mailboxes[done], mailboxes[failed])).toEqual(NO_FILING_ERRORS);
}

describe.skipIf(!hasPostgres || !runImapTests)('IMAP connection killed mid-fetch', () => {
  let dovecot: DovecotServer;
  const databases: Array<Awaited<ReturnType<typeof createTestDatabase>>> = [];
  let folder: string;

  beforeAll(async () => {
    dovecot = await startDovecot();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-imap-drop-'));
  });

  afterAll(async () => {
    await Promise.all(databases.map((database) => database.drop()));
    await dovecot?.stop();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('serve reconnects and carries on', async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const scenario = buildMailbox(83, 'serve-drop');
    await appendMessages(
      dovecot,
      scenario.mailbox,
      scenario.corpus.messages.map((message) => message.bytes),
    );
    const known = new Set(await findImapPids(dovecot));

    const serve = await startServe({
      ...imapEnv(dovecot, scenario.mailbox, database.url),
      DATA_DIR: path.join(folder, 'data'),
      ADMIN_PASSWORD: 'an-imap-drop-test-password',
    });
    const kills: FetchKill[] = [];
    try {
      // Cut three connections in a row, each while a large message is on its way.
      for (let round = 0; round < 3; round++) {
        const pid = await serve.whileRunning(waitForNewImapPid(dovecot, known));
        known.add(pid);
        const kill = await killDuringFetch(pid);
        expect(kill, `no large fetch seen on connection ${round + 1}`).not.toBeNull();
        kills.push(kill!);
      }

      const drained = waitFor(
        'serve to drain the mailbox after the reconnects',
        async () => {
          const state = await readIngestState(database.url);
          const left = (await listMessageIds(dovecot, [scenario.mailbox]))[scenario.mailbox];
          const done =
            left.length === 0 &&
            state.reports === scenario.corpus.reports &&
            state.reportsNotRolledUp === 0;
          return done ? true : null;
        },
        60_000,
        250,
      );
      await serve.whileRunning(drained);
    } catch (error) {
      await serve.kill();
      throw new Error(`${(error as Error).message}\nserve log:\n${serve.stderrTail()}`, {
        cause: error,
      });
    }
    const stopped = await serve.terminate();
    expect(stopped.code).toBe(0);

    // Each kill came before the whole message was sent.
    for (const kill of kills) {
      expect(kill.writtenBeforeKill).toBeLessThan(scenario.smallestLarge);
    }
    const logs = serve.logs();
    const retries = logs.filter((line) => line.msg === 'IMAP poll failed, retrying');
    const connects = logs.filter((line) => line.msg === 'IMAP connected');
    expect(retries.length).toBeGreaterThanOrEqual(3);
    expect(connects.length).toBeGreaterThanOrEqual(4);
    expect(retries.map((line) => Number(line.retryInMs))).toEqual([1000, 2000, 4000]);
    await expectExactOutcome(dovecot, database.url, scenario);
  }, 180_000);

  it('poll --once stops early, and a rerun finishes', async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const scenario = buildMailbox(87, 'poll-drop');
    await appendMessages(
      dovecot,
      scenario.mailbox,
      scenario.corpus.messages.map((message) => message.bytes),
    );
    const env = { ...imapEnv(dovecot, scenario.mailbox, database.url), LOG_LEVEL: 'error' };
    const known = new Set(await findImapPids(dovecot));

    const run = runCli(['poll', '--once'], env);
    const pid = await waitForNewImapPid(dovecot, known);
    const kill = await killDuringFetch(pid);
    const cut = await run;

    expect(kill, 'no large fetch seen').not.toBeNull();
    expect(kill!.writtenBeforeKill).toBeLessThan(scenario.smallestLarge);
    expect(cut.signal).toBeNull();
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/the drain stopped early \[imap-failed\]/);
    expect(cut.stdout).toMatch(/^Messages seen: +\d+$/m);
    expect(cut.stdout).toMatch(/^Errors: +\d+$/m);

    const rerun = await runCli(['poll', '--once'], env);
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    await expectExactOutcome(dovecot, database.url, scenario);
  }, 120_000);
});
