import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';

import { ImapFlow } from 'imapflow';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  ImapPollError,
  ImapPoller,
  pollOnce,
  type ImapPollerConfig,
  type ImapRawInput,
  type IngestFunction,
  type IngestResult,
} from '../../src/ingest/imap-poller.js';
import { ingestInput } from '../../src/ingest/pipeline.js';
import { saveRawInput, sha256 } from '../../src/store/raw-inputs.js';
import {
  findImapPidForClient,
  findImapPids,
  isDovecotInstalled,
  readDovecotLog,
  startDovecot,
  type DovecotServer,
} from '../harness/dovecot.js';
import { isCI, openTestRuntime, postgresAvailable, type TestRuntime } from '../helpers/database.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');

// In CI a missing Dovecot or PostgreSQL fails the file, because startDovecot and postgresAvailable
// throw there. Elsewhere the suite is skipped without Dovecot and uses PGlite without PostgreSQL.
const runImapTests = isDovecotInstalled() || isCI;
const databaseKind = (await postgresAvailable()) ? 'postgres' : 'pglite';

// Every log line of every poller in this file, to check that the password never appears.
const logLines: string[] = [];
const logger = pino(
  { level: 'trace' },
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  }),
);

interface IngestCall {
  input: ImapRawInput;
  at: number;
  outcome?: IngestResult;
  error?: unknown;
}

/** Records every call to an ingest function, with its outcome or error. */
function recording(ingest: IngestFunction): { ingest: IngestFunction; calls: IngestCall[] } {
  const calls: IngestCall[] = [];
  return {
    calls,
    ingest: async (input) => {
      const call: IngestCall = { input, at: Date.now() };
      calls.push(call);
      try {
        call.outcome = await ingest(input);
        return call.outcome;
      } catch (error) {
        call.error = error;
        throw error;
      }
    },
  };
}

/** Ingest that fails like an unavailable database for its first `failures` calls. */
function failingFirst(failures: number, ingest: IngestFunction): IngestFunction {
  let remaining = failures;
  return async (input) => {
    if (remaining > 0) {
      remaining -= 1;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
        code: 'ECONNREFUSED',
      });
    }
    return ingest(input);
  };
}

/** Ingest whose first call waits for `release()` after announcing itself through `entered`. */
function gatedFirst(ingest: IngestFunction) {
  let release!: () => void;
  let announce!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const entered = new Promise<void>((resolve) => (announce = resolve));
  let first = true;
  const gated: IngestFunction = async (input) => {
    if (first) {
      first = false;
      announce();
      await released;
    }
    return ingest(input);
  };
  return { ingest: gated, entered, release };
}

interface Attachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

/** Builds an RFC 822 message with CRLF line ends, as a reporter's MTA would deliver it. */
function buildMessage(subject: string, attachment?: Attachment): Buffer {
  const boundary = `b-${randomBytes(6).toString('hex')}`;
  const headers = [
    'From: noreply-dmarc-support@google.com',
    'To: dmarc@example.com',
    `Subject: ${subject}`,
    `Message-ID: <${randomBytes(8).toString('hex')}@reports.example>`,
    'Date: Fri, 05 Dec 2025 10:00:00 +0000',
    'MIME-Version: 1.0',
  ];
  if (!attachment) {
    const body = ['Content-Type: text/plain; charset=utf-8', '', 'Hello, this is not a report.'];
    return Buffer.from([...headers, ...body, ''].join('\r\n'));
  }

  const encoded = attachment.content.toString('base64').replace(/.{76}/g, '$&\r\n');
  const lines = [
    ...headers,
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `This is an aggregate report: ${subject}`,
    `--${boundary}`,
    `Content-Type: ${attachment.contentType}; name="${attachment.filename}"`,
    `Content-Disposition: attachment; filename="${attachment.filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    encoded,
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

function fixture(name: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, name));
}

async function waitFor(
  description: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    // A mailbox that the poller has not created yet cannot be read; that counts as not yet.
    try {
      if (await check()) {
        return;
      }
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting until ${description}`, {
    cause: lastError,
  });
}

describe.skipIf(!runImapTests)('IMAP poller against Dovecot', () => {
  let dovecot: DovecotServer;
  let runtime: TestRuntime;
  let caseNumber = 0;
  const pollers: ImapPoller[] = [];

  // The ingest under test in one place: the real pipeline storing into a fresh database.
  const pipeline: IngestFunction = (input) => ingestInput(runtime.ingest, input);

  beforeAll(async () => {
    dovecot = await startDovecot();
    runtime = await openTestRuntime(databaseKind, { DOMAINS: 'example.com' });
  });

  afterEach(async () => {
    await Promise.all(
      pollers.splice(0).map((poller) => withTimeout('Stopping a poller', poller.stop())),
    );
  });

  afterAll(async () => {
    await withTimeout('Dropping the test database', runtime?.dispose());
    await withTimeout('Stopping Dovecot', dovecot?.stop());
  });

  function connectClient(): Promise<ImapFlow> {
    return connectTo(dovecot);
  }

  /** Creates a source mailbox of its own per test, with done and failed folders below it. */
  async function newCase(overrides: Partial<ImapPollerConfig> = {}) {
    caseNumber += 1;
    const mailbox = `case${caseNumber}`;
    const config: ImapPollerConfig = {
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      user: dovecot.user,
      password: dovecot.password,
      mailbox,
      doneMailbox: `${mailbox}/done`,
      failedMailbox: `${mailbox}/failed`,
      retryInitialMs: 100,
      retryMaxMs: 1000,
      ...overrides,
    };
    const client = await connectClient();
    try {
      await client.mailboxCreate(mailbox);
    } finally {
      await client.logout();
    }
    return { mailbox, config };
  }

  async function append(mailbox: string, messages: Buffer[]): Promise<void> {
    const client = await connectClient();
    try {
      for (const message of messages) {
        await client.append(mailbox, message);
      }
    } finally {
      await client.logout();
    }
  }

  /** Subjects of the messages in a mailbox; `/` separates levels as in the poller config. */
  function subjects(mailbox: string): Promise<string[]> {
    return subjectsIn(dovecot, mailbox);
  }

  function startPoller(config: ImapPollerConfig, ingest: IngestFunction): ImapPoller {
    const poller = new ImapPoller(config, { logger, ingest });
    pollers.push(poller);
    poller.start();
    return poller;
  }

  it('moves each message by its ingest outcome', async () => {
    // Four messages in batches of three: the second batch is fetched after the first is moved.
    const { mailbox, config } = await newCase({ batchSize: 3 });
    const gzipped = gzipSync(fixture('rfc9990-namespaced.xml'));
    await append(mailbox, [
      buildMessage('xml attachment', {
        filename: 'google.com!example.com!1764892800!1764979199.xml',
        contentType: 'application/xml',
        content: fixture('rfc7489-google.xml'),
      }),
      buildMessage('gzip attachment', {
        filename: 'receiver.example!example.com!1764892800!1764979199.xml.gz',
        contentType: 'application/gzip',
        content: gzipped,
      }),
      buildMessage('draft attachment', {
        filename: 'yahoo.xml',
        contentType: 'application/octet-stream',
        content: fixture('draft-no-version.xml'),
      }),
      buildMessage('junk without report'),
    ]);
    const { ingest, calls } = recording(pipeline);

    const summary = await pollOnce(config, { logger, ingest });

    expect(calls.map((call) => call.outcome?.status)).toEqual([
      'done',
      'done',
      'done',
      'quarantined',
    ]);
    expect(summary).toMatchObject({ seen: 4, movedToDone: 3, movedToFailed: 1, left: 0 });
    expect(summary.errors).toBe(0);
    expect(summary.reportsStored).toBe(3);
    expect(await subjects(mailbox)).toEqual([]);
    expect(await subjects(`${mailbox}/done`)).toEqual([
      'xml attachment',
      'gzip attachment',
      'draft attachment',
    ]);
    expect(await subjects(`${mailbox}/failed`)).toEqual(['junk without report']);
  });

  it('passes the raw message and its origin to ingest', async () => {
    const { mailbox, config } = await newCase();
    const message = buildMessage('origin check', {
      filename: 'report.xml',
      contentType: 'application/xml',
      content: fixture('foreign-domain.xml'),
    });
    await append(mailbox, [message]);
    const { ingest, calls } = recording(pipeline);

    await pollOnce(config, { logger, ingest });

    expect(calls).toHaveLength(1);
    const { input } = calls[0];
    expect(input.bytes.equals(message)).toBe(true);
    expect(input.source).toBe('imap');
    expect(input.origin.mailbox).toBe(mailbox);
    expect(input.origin.uid).toBe(1);
    expect(input.origin.uidValidity).toMatch(/^\d+$/);
    expect(input.origin.messageId).toMatch(/@reports\.example>$/);
    expect(input.name).toBe(
      `imap://${dovecot.user}@127.0.0.1:${dovecot.port}/${mailbox};` +
        `UIDVALIDITY=${input.origin.uidValidity}/;UID=1`,
    );
    const { rows } = await runtime.db.pool.query(
      `SELECT d.origin FROM raw_input_deliveries d JOIN raw_inputs r ON r.id = d.raw_input_id
        WHERE r.sha256 = $1`,
      [sha256(message)],
    );
    expect(rows).toEqual([{ origin: input.origin }]);
  });

  it('finds nothing on a second run', async () => {
    const { mailbox, config } = await newCase();
    await append(mailbox, [buildMessage('only once')]);
    await pollOnce(config, { logger, ingest: pipeline });
    const { ingest, calls } = recording(pipeline);

    const summary = await pollOnce(config, { logger, ingest });

    expect(summary.seen).toBe(0);
    expect(calls).toHaveLength(0);
    expect(await subjects(`${mailbox}/failed`)).toEqual(['only once']);
  });

  it('files a resent message as done without storing it twice', async () => {
    const { mailbox, config } = await newCase();
    const message = buildMessage('sent twice', {
      filename: 'report.xml',
      contentType: 'application/xml',
      content: fixture('rfc7489-google.xml'),
    });
    await append(mailbox, [message, message]);
    const { ingest, calls } = recording(pipeline);

    const summary = await pollOnce(config, { logger, ingest });

    expect(summary.movedToDone).toBe(2);
    expect(calls.map((call) => call.outcome?.duplicateInput)).toEqual([false, true]);
    const { rows } = await runtime.db.pool.query(
      'SELECT count(*)::int AS n FROM raw_inputs WHERE sha256 = $1',
      [sha256(message)],
    );
    expect(rows[0].n).toBe(1);
  });

  it('moves an oversized message to failed unread', async () => {
    const { mailbox, config } = await newCase({ maxMessageBytes: 4096 });
    await append(mailbox, [
      buildMessage('too large', {
        filename: 'big.xml',
        contentType: 'application/xml',
        content: randomBytes(8192),
      }),
      buildMessage('small junk'),
    ]);
    const { ingest, calls } = recording(pipeline);

    const summary = await pollOnce(config, { logger, ingest });

    expect(summary).toMatchObject({ seen: 2, oversize: 1, movedToFailed: 2 });
    expect(calls.map((call) => call.input.origin.uid)).toEqual([2]);
    expect(await subjects(`${mailbox}/failed`)).toEqual(['too large', 'small junk']);
  });

  it('counts a message moved elsewhere as vanished', async () => {
    const { mailbox, config } = await newCase();
    await append(mailbox, [buildMessage('taken by another instance')]);

    // Another instance finishes the same message first and moves it away.
    const ingest: IngestFunction = async (input) => {
      const outcome = await pipeline(input);
      const other = await connectClient();
      try {
        await other.mailboxOpen(mailbox);
        await other.messageMove(String(input.origin.uid), [mailbox, 'failed'], { uid: true });
      } finally {
        await other.logout();
      }
      return outcome;
    };

    const summary = await pollOnce(config, { logger, ingest });

    expect(summary).toMatchObject({ seen: 1, vanished: 1, movedToFailed: 0, errors: 0 });
    expect(await subjects(`${mailbox}/failed`)).toEqual(['taken by another instance']);
  });

  it('leaves every message when ingest throws', async () => {
    const { mailbox, config } = await newCase();
    await append(mailbox, [buildMessage('first'), buildMessage('second')]);
    const { ingest, calls } = recording(failingFirst(1, pipeline));

    const error = await pollOnce(config, { logger, ingest }).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ImapPollError);
    expect((error as ImapPollError).code).toBe('ingest-failed');
    expect((error as ImapPollError).uid).toBe(1);
    expect((error as ImapPollError).summary).toMatchObject({ seen: 1, left: 1, errors: 1 });
    expect(calls).toHaveLength(1);
    expect(await subjects(mailbox)).toEqual(['first', 'second']);
    expect(await subjects(`${mailbox}/failed`)).toEqual([]);
  });

  it('retries with growing delays until ingest works', async () => {
    const { mailbox, config } = await newCase({ retryInitialMs: 200, retryMaxMs: 5000 });
    await append(mailbox, [buildMessage('retried')]);
    const { ingest, calls } = recording(failingFirst(2, pipeline));

    startPoller(config, ingest);
    await waitFor('the message reaches the failed mailbox', async () => {
      return (await subjects(`${mailbox}/failed`)).length === 1;
    });

    expect(calls.map((call) => (call.error ? 'threw' : call.outcome?.status))).toEqual([
      'threw',
      'threw',
      'quarantined',
    ]);
    const firstGap = calls[1].at - calls[0].at;
    const secondGap = calls[2].at - calls[1].at;
    expect(firstGap).toBeGreaterThanOrEqual(200);
    expect(secondGap).toBeGreaterThanOrEqual(400);
    expect(await subjects(mailbox)).toEqual([]);
  });

  it.skipIf(databaseKind !== 'postgres')(
    'leaves a message claimed by another process',
    async () => {
      const { mailbox, config } = await newCase();
      const message = buildMessage('claimed', {
        filename: 'report.xml',
        contentType: 'application/xml',
        content: fixture('rfc9990-namespaced.xml'),
      });
      await append(mailbox, [message]);

      // Another process has stored these bytes and keeps the row locked while it reads them.
      const stored = await saveRawInput(runtime.db.pool, {
        bytes: message,
        name: 'claimed.eml',
        source: 'file',
        origin: {},
      });
      const holder = await runtime.db.pool.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT id FROM raw_inputs WHERE id = $1 FOR NO KEY UPDATE', [
          stored.id,
        ]);

        const summary = await pollOnce(config, { logger, ingest: pipeline });

        expect(summary).toMatchObject({ seen: 1, left: 1, movedToDone: 0 });
        expect(await subjects(mailbox)).toEqual(['claimed']);
      } finally {
        await holder.query('ROLLBACK');
        holder.release();
      }

      const summary = await pollOnce(config, { logger, ingest: pipeline });
      expect(summary).toMatchObject({ seen: 1, movedToDone: 1 });
      expect(await subjects(mailbox)).toEqual([]);
    },
  );

  it('reconnects after its imap process is killed mid-drain', async () => {
    const { mailbox, config } = await newCase();
    const first = buildMessage('in hand when killed', {
      filename: 'report.xml',
      contentType: 'application/xml',
      content: fixture('rfc7489-google.xml'),
    });
    await append(mailbox, [first, buildMessage('after the reconnect')]);
    const gate = gatedFirst(pipeline);
    const { ingest, calls } = recording(gate.ingest);
    const pidsBefore = new Set(await findImapPids(dovecot));

    startPoller(config, ingest);
    await gate.entered;
    const pollerPids = (await findImapPids(dovecot)).filter((pid) => !pidsBefore.has(pid));
    expect(pollerPids).toHaveLength(1);
    process.kill(pollerPids[0], 'SIGKILL');
    gate.release();

    await waitFor('both messages have left the source mailbox', async () => {
      return (await subjects(mailbox)).length === 0;
    });
    expect(await subjects(`${mailbox}/done`)).toEqual(['in hand when killed']);
    expect(await subjects(`${mailbox}/failed`)).toEqual(['after the reconnect']);
    expect(calls.map((call) => call.input.origin.uid)).toEqual([1, 1, 2]);
    expect(calls[1].outcome?.duplicateInput).toBe(true);
    const { rows } = await runtime.db.pool.query(
      'SELECT count(*)::int AS n FROM raw_inputs WHERE sha256 = $1',
      [sha256(first)],
    );
    expect(rows[0].n).toBe(1);
    expect(await readDovecotLog(dovecot)).toMatch(/killed with signal 9/);
  });

  it('wakes from IDLE when a message arrives', async () => {
    // A poll interval far beyond the test timeout: only IDLE can deliver this message in time.
    const { mailbox, config } = await newCase({ pollSeconds: 3600 });
    const { ingest, calls } = recording(pipeline);
    const poller = startPoller(config, ingest);
    expect((await poller.drainOnce()).seen).toBe(0);

    const appendedAt = Date.now();
    await append(mailbox, [buildMessage('announced by IDLE')]);
    await waitFor(
      'the message reaches the failed mailbox',
      async () => (await subjects(`${mailbox}/failed`)).length === 1,
      5000,
    );

    expect(calls).toHaveLength(1);
    expect(calls[0].at - appendedAt).toBeLessThan(5000);

    const stopStartedAt = Date.now();
    await poller.stop();
    expect(Date.now() - stopStartedAt).toBeLessThan(1000);
  });

  it('finishes the message in hand on stop', async () => {
    const { mailbox, config } = await newCase();
    await append(mailbox, [buildMessage('in hand'), buildMessage('not started')]);
    const gate = gatedFirst(pipeline);
    const { ingest, calls } = recording(gate.ingest);
    const poller = startPoller(config, ingest);
    await gate.entered;

    const stopped = poller.stop();
    gate.release();
    await stopped;

    expect(calls).toHaveLength(1);
    expect(await subjects(`${mailbox}/failed`)).toEqual(['in hand']);
    expect(await subjects(mailbox)).toEqual(['not started']);
  });

  it('recovers when the mailbox is recreated with a new UIDVALIDITY', async () => {
    const { mailbox, config } = await newCase();
    await append(mailbox, [buildMessage('before')]);
    const { ingest, calls } = recording(pipeline);
    await pollOnce(config, { logger, ingest });

    const client = await connectClient();
    try {
      await client.mailboxDelete(mailbox);
      await client.mailboxCreate(mailbox);
      await client.append(mailbox, buildMessage('after'));
    } finally {
      await client.logout();
    }
    await pollOnce(config, { logger, ingest });

    expect(calls).toHaveLength(2);
    expect(calls[1].input.origin.uid).toBe(1);
    expect(calls[1].input.origin.uidValidity).not.toBe(calls[0].input.origin.uidValidity);
    expect(await subjects(`${mailbox}/failed`)).toEqual(['before', 'after']);
  });

  it('names the user on a failed login', async () => {
    const { config } = await newCase();
    const wrongPassword = `wrong-${dovecot.password}`;

    const error = await pollOnce(
      { ...config, password: wrongPassword },
      { logger, ingest: pipeline },
    ).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ImapPollError);
    expect((error as ImapPollError).code).toBe('login-failed');
    expect((error as ImapPollError).message).toContain(`as ${dovecot.user} on 127.0.0.1:`);
    expect((error as ImapPollError).message).not.toContain(wrongPassword);
    expect(logLines.filter((line) => line.includes(wrongPassword))).toEqual([]);
  });

  it('names a missing source mailbox', async () => {
    const { config } = await newCase();

    const error = await pollOnce(
      { ...config, mailbox: 'no-such-mailbox' },
      { logger, ingest: pipeline },
    ).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ImapPollError);
    expect((error as ImapPollError).code).toBe('imap-failed');
    expect((error as ImapPollError).message).toContain('no-such-mailbox');
  });

  it('finds the imap process serving a connection', async () => {
    const client = await connectClient();
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => {});
    const localPort = (client as unknown as { socket: { localPort: number } }).socket.localPort;

    const pid = await findImapPidForClient(dovecot, localPort);

    expect(pid).toBeDefined();
    expect(await findImapPids(dovecot)).toContain(pid);
    process.kill(pid as number, 'SIGKILL');
    await closed;
    expect(await findImapPidForClient(dovecot, localPort)).toBeUndefined();
  });

  it('never logs the password', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((line) => line.includes(dovecot.password))).toEqual([]);
  });
});

describe.skipIf(!runImapTests)('IMAP poller against a server without IDLE and MOVE', () => {
  let dovecot: DovecotServer;
  let runtime: TestRuntime;
  let poller: ImapPoller | undefined;

  beforeAll(async () => {
    dovecot = await startDovecot({
      imapCapability: 'IMAP4rev1 SASL-IR LITERAL+ ID ENABLE UIDPLUS NAMESPACE CHILDREN',
    });
    runtime = await openTestRuntime(databaseKind, { DOMAINS: 'example.com' });
  });

  afterAll(async () => {
    await withTimeout('Stopping the poller', poller?.stop());
    await withTimeout('Dropping the test database', runtime?.dispose());
    await withTimeout('Stopping Dovecot', dovecot?.stop());
  });

  it('polls and moves with COPY and EXPUNGE', async () => {
    const client = await connectTo(dovecot);
    await client.logout();
    expect(client.capabilities.has('IDLE')).toBe(false);
    expect(client.capabilities.has('MOVE')).toBe(false);

    const config: ImapPollerConfig = {
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      user: dovecot.user,
      password: dovecot.password,
      doneMailbox: 'reports/done',
      failedMailbox: 'reports/failed',
      pollSeconds: 1,
    };
    const { ingest, calls } = recording((input) => ingestInput(runtime.ingest, input));
    poller = new ImapPoller(config, { logger, ingest });
    poller.start();
    expect((await poller.drainOnce()).seen).toBe(0);

    await appendTo(dovecot, 'INBOX', [
      buildMessage('polled', {
        filename: 'report.xml',
        contentType: 'application/xml',
        content: fixture('rfc7489-google.xml'),
      }),
    ]);
    // COPY lands the message in done before EXPUNGE removes it from INBOX, so wait for both.
    await waitFor(
      'the polled message moves from INBOX to the done mailbox',
      async () =>
        (await subjectsIn(dovecot, 'reports/done')).length === 1 &&
        (await subjectsIn(dovecot, 'INBOX')).length === 0,
      5000,
    );

    expect(calls).toHaveLength(1);
    expect(logLines.some((line) => line.includes('UID COPY'))).toBe(true);
  });
});

/** Fails with the step's name when teardown hangs, instead of vitest's anonymous hook timeout. */
async function withTimeout(step: string, work: Promise<void> | undefined, ms = 45_000) {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step} timed out after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function connectTo(dovecot: DovecotServer): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.port,
    secure: false,
    auth: { user: dovecot.user, pass: dovecot.password },
    logger: false,
  });
  await client.connect();
  return client;
}

async function appendTo(dovecot: DovecotServer, mailbox: string, messages: Buffer[]) {
  const client = await connectTo(dovecot);
  try {
    for (const message of messages) {
      await client.append(mailbox, message);
    }
  } finally {
    await client.logout();
  }
}

async function subjectsIn(dovecot: DovecotServer, mailbox: string): Promise<string[]> {
  const client = await connectTo(dovecot);
  try {
    const delimiter = client.namespace?.delimiter ?? '.';
    const lock = await client.getMailboxLock(mailbox.split('/').join(delimiter));
    try {
      if (client.mailbox && client.mailbox.exists === 0) {
        return [];
      }
      const messages = await client.fetchAll('1:*', { uid: true, envelope: true });
      return messages.sort((a, b) => a.uid - b.uid).map((m) => m.envelope?.subject ?? '');
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}
