import { ImapFlow, type FetchMessageObject } from 'imapflow';
import type { Logger } from 'pino';

/** Mailbox, UID and UIDVALIDITY of a message, stored by the pipeline with the raw input. */
export type ImapOrigin = {
  mailbox: string;
  uid: number;
  uidValidity: string;
  messageId?: string;
};

/** One mailbox message, handed to the ingest pipeline as raw RFC 822 bytes. */
export type ImapRawInput = {
  bytes: Buffer;
  name: string;
  source: 'imap';
  origin: ImapOrigin;
};

/** The part of the pipeline's outcome that decides where the message goes. */
export interface IngestResult {
  rawInputId: number;
  /** `claimed-elsewhere`: another process is reading the same input right now. */
  status: 'done' | 'partial' | 'quarantined' | 'claimed-elsewhere';
  duplicateInput: boolean;
  reportsStored: number;
  reportsDuplicate: number;
  errors: { code: string; message: string }[];
}

/**
 * Stores one raw input and its reports. Resolves only after the outcome is committed, and
 * rejects when the database is unavailable: the message then stays in the mailbox.
 */
export type IngestFunction = (input: ImapRawInput) => Promise<IngestResult>;

export interface ImapPollerConfig {
  host: string;
  port: number;
  /** IMAP_TLS: TLS from the first byte. Without it, STARTTLS is used when the server offers it. */
  secure: boolean;
  user: string;
  password: string;
  /** Mailbox to drain. Names use `/` as the hierarchy separator, whatever the server uses. */
  mailbox?: string;
  doneMailbox: string;
  failedMailbox: string;
  /** Seconds between polls when the server has no IDLE. */
  pollSeconds?: number;
  /** Messages above this size (RFC822.SIZE, in bytes) are not read and go to the failed mailbox. */
  maxMessageBytes?: number;
  /** Messages whose metadata is fetched per FETCH command. */
  batchSize?: number;
  /** First delay after a failed connection or ingest, in milliseconds; it doubles per failure. */
  retryInitialMs?: number;
  /** Largest delay between two attempts, in milliseconds. */
  retryMaxMs?: number;
}

export interface ImapPollerDeps {
  logger: Logger;
  ingest: IngestFunction;
  /**
   * Takes a lock shared by every process that drains this mailbox, or returns null when another
   * process holds it; the returned function releases it. Two processes moving the same message
   * at once can leave two copies of it, so drains take turns.
   */
  drainLock?: () => Promise<(() => Promise<void>) | null>;
  /** Called after every connection attempt, so that alerts can tell a mailbox that stays down. */
  onConnection?: (state: { connected: true } | { connected: false; error: Error }) => void;
}

/** Counts of one drain of the mailbox. */
export interface DrainSummary {
  /** Messages examined. */
  seen: number;
  movedToDone: number;
  movedToFailed: number;
  /** Messages that stay in the mailbox: claimed by another process, or not stored yet. */
  left: number;
  /** Messages that another client expunged or moved before this one moved them. */
  vanished: number;
  /** Messages above `maxMessageBytes`, moved to the failed mailbox unread. */
  oversize: number;
  errors: number;
  reportsStored: number;
  reportsDuplicate: number;
}

export type ImapPollErrorCode =
  | 'ingest-failed'
  | 'move-failed'
  | 'search-failed'
  | 'connection-lost'
  | 'login-failed'
  | 'imap-failed'
  | 'uidvalidity-changed';

/** A drain that stopped early; the message it names stays in the mailbox. */
export class ImapPollError extends Error {
  readonly code: ImapPollErrorCode;
  readonly mailbox: string;
  readonly uid: number | null;
  /** Counts of the drain up to where it stopped, set by `drainOnce()` and `pollOnce()`. */
  summary: DrainSummary | null = null;

  constructor(
    code: ImapPollErrorCode,
    message: string,
    context: { mailbox: string; uid?: number; cause?: unknown },
  ) {
    super(message, { cause: context.cause });
    this.name = 'ImapPollError';
    this.code = code;
    this.mailbox = context.mailbox;
    this.uid = context.uid ?? null;
  }
}

const DEFAULTS = {
  mailbox: 'INBOX',
  pollSeconds: 60,
  maxMessageBytes: 50 * 1024 * 1024,
  batchSize: 50,
  retryInitialMs: 1000,
  retryMaxMs: 60_000,
};

// With IDLE the server announces new mail, but the mailbox is still searched this often, so that
// messages left for another process and notifications lost by the server are picked up again.
// It stays below imapflow's 5 minute socket timeout, which would otherwise end a silent IDLE first.
const IDLE_REDRAIN_MS = 4 * 60 * 1000;
const LEFT_REDRAIN_MS = 10 * 1000;

type Settings = Required<ImapPollerConfig>;

interface DrainWaiter {
  resolve(summary: DrainSummary): void;
  reject(error: unknown): void;
}

/**
 * Drains an IMAP mailbox into the ingest pipeline, then waits for new mail with IDLE (or polls)
 * and drains again. A message is moved to the done or failed mailbox only after `ingest` has
 * committed its outcome, so a crash at any point leaves it in the mailbox to be read again.
 *
 * Inputs are identified by a hash of their bytes, not by UID, so reading a message twice (after
 * a crash, a reconnect or a UIDVALIDITY change) stores nothing twice. That is why the poller keeps
 * no UID state between drains: every drain searches the whole mailbox again.
 */
export class ImapPoller {
  private readonly settings: Settings;
  private readonly log: Logger;
  private readonly imapflowLog: Logger;
  private readonly ingest: IngestFunction;

  private stopping = false;
  private running: Promise<void> | null = null;
  private oneShot: Promise<DrainSummary> | null = null;
  private connecting: ImapFlow | null = null;
  private current: ImapFlow | null = null;
  private wake: (() => void) | null = null;
  private newMail = false;
  private drainWaiters: DrainWaiter[] = [];
  /** Messages the last drain left for another process; they are looked at again soon. */
  private leftInMailbox = 0;
  private readonly onConnection: ImapPollerDeps['onConnection'];
  private readonly drainLock: ImapPollerDeps['drainLock'];

  constructor(config: ImapPollerConfig, deps: ImapPollerDeps) {
    this.settings = { ...DEFAULTS, ...withoutUndefined(config) } as Settings;
    this.log = deps.logger.child({ component: 'imap-poller' });
    this.imapflowLog = deps.logger.child({ component: 'imapflow' });
    this.ingest = deps.ingest;
    this.onConnection = deps.onConnection;
    this.drainLock = deps.drainLock;
  }

  /** Starts draining and watching the mailbox in the background, reconnecting when needed. */
  start(): void {
    if (this.running) {
      return;
    }
    this.stopping = false;
    this.running = this.run().catch((err: unknown) => {
      this.log.error({ err }, 'IMAP poller stopped after an unexpected error');
    });
  }

  /** Finishes the message in hand, logs out and resolves once the poller has stopped. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();

    // A connection attempt can take up to its timeout; nothing is in hand yet, so it is cut off.
    this.connecting?.close();
    await Promise.allSettled([this.running, this.oneShot]);
    this.running = null;

    for (const waiter of this.drainWaiters.splice(0)) {
      waiter.reject(new Error('IMAP poller stopped before the requested drain'));
    }
  }

  /**
   * Drains the mailbox once. While the poller runs, this requests a drain from the running loop
   * and returns its summary. Otherwise it connects, drains every message and logs out.
   * @throws ImapPollError when the drain stopped early, with `summary` set
   */
  drainOnce(): Promise<DrainSummary> {
    if (this.running) {
      return new Promise((resolve, reject) => {
        this.drainWaiters.push({ resolve, reject });
        this.wake?.();
      });
    }
    const drain = this.connectAndDrain();
    this.oneShot = drain;
    return drain.finally(() => {
      this.oneShot = null;
    });
  }

  private async connectAndDrain(): Promise<DrainSummary> {
    const summary = emptySummary();
    let client: ImapFlow | null = null;
    try {
      client = await this.connect();
      await this.drain(client, summary);
      this.logSummary(summary);
      return summary;
    } catch (err) {
      throw this.withSummary(err, summary);
    } finally {
      await this.disconnect(client);
    }
  }

  private async run(): Promise<void> {
    let failures = 0;

    while (!this.stopping) {
      let client: ImapFlow | null = null;
      try {
        client = await this.connect();
        while (!this.stopping) {
          await this.drainForWaiters(client);
          failures = 0;
          if (!this.stopping && this.drainWaiters.length === 0) {
            await this.waitForNewMail(client);
          }
        }
      } catch (err) {
        if (this.stopping) {
          this.log.warn({ err }, 'IMAP poll failed while stopping');
          break;
        }
        failures += 1;
        const delayMs = retryDelay(failures, this.settings);
        this.log.error(
          { err, mailbox: this.settings.mailbox, failures, retryInMs: delayMs },
          'IMAP poll failed, retrying',
        );
        await this.disconnect(client);
        client = null;
        await this.sleep(delayMs);
      } finally {
        await this.disconnect(client);
      }
    }
    this.log.info({ mailbox: this.settings.mailbox }, 'IMAP poller stopped');
  }

  private async drainForWaiters(client: ImapFlow): Promise<void> {
    const waiters = this.drainWaiters.splice(0);
    const summary = emptySummary();
    const release = this.drainLock ? await this.drainLock() : async () => {};
    if (!release) {
      // Another process is draining: look again soon, and let waiters see an empty drain.
      this.leftInMailbox = 1;
      waiters.forEach((waiter) => waiter.resolve(summary));
      return;
    }
    try {
      await this.drain(client, summary);
    } catch (err) {
      const error = this.withSummary(err, summary);
      waiters.forEach((waiter) => waiter.reject(error));
      throw error;
    } finally {
      await release().catch((err: unknown) =>
        this.log.warn({ err }, 'Releasing the drain lock failed'),
      );
    }
    this.logSummary(summary);
    this.leftInMailbox = summary.left;
    waiters.forEach((waiter) => waiter.resolve(summary));
  }

  private async connect(): Promise<ImapFlow> {
    const { host, port, secure, user, password } = this.settings;
    const client = new ImapFlow({
      host,
      port,
      secure,
      auth: { user, pass: password },
      logger: this.imapflowLog,
      // IDLE is started explicitly between drains, never in the middle of one.
      disableAutoIdle: true,
      connectionTimeout: 30_000,
    });

    // imapflow emits 'error' once before closing; without a listener it would crash the process.
    client.on('error', (err: Error) => {
      this.log.warn({ err, host, port }, 'IMAP connection failed');
    });
    // Events of a connection that was already given up must not cut a retry delay short.
    client.on('exists', (event) => {
      if (client === this.current && event.count > event.prevCount) {
        this.newMail = true;
        this.wake?.();
      }
    });
    client.on('close', () => {
      if (client === this.current) {
        this.wake?.();
      }
    });

    this.connecting = client;
    this.current = client;
    try {
      await client.connect();
      this.log.info({ host, port, user, mailbox: this.settings.mailbox }, 'IMAP connected');
      await this.ensureMailboxes(client);
      this.reportConnection({ connected: true });
    } catch (err) {
      this.reportConnection({ connected: false, error: err as Error });
      await this.disconnect(client);
      throw err;
    } finally {
      this.connecting = null;
    }
    return client;
  }

  private reportConnection(
    state: Parameters<NonNullable<ImapPollerDeps['onConnection']>>[0],
  ): void {
    try {
      this.onConnection?.(state);
    } catch (err) {
      this.log.warn({ err }, 'Recording the IMAP connection state failed');
    }
  }

  private async disconnect(client: ImapFlow | null): Promise<void> {
    if (client && client === this.current) {
      this.current = null;
    }
    if (!client || client.isClosed) {
      return;
    }
    try {
      await client.logout();
    } catch (err) {
      this.log.debug({ err }, 'IMAP logout failed, closing the connection');
      client.close();
    }
  }

  // Both folders are created at connect time, before the first move needs them.
  private async ensureMailboxes(client: ImapFlow): Promise<void> {
    const existing = new Set((await client.list()).map((mailbox) => mailbox.path));
    for (const name of [this.settings.doneMailbox, this.settings.failedMailbox]) {
      const path = resolveMailboxPath(client, name);
      if (!existing.has(path)) {
        await client.mailboxCreate(path);
        existing.add(path);
        this.log.info({ mailbox: path }, 'Created IMAP mailbox');
      }
    }
  }

  // A drain is one or more passes: each pass searches for the UIDs above the last one handled
  // and works through them in batches. It ends with a pass that finds nothing new.
  private async drain(client: ImapFlow, summary: DrainSummary): Promise<void> {
    const mailbox = resolveMailboxPath(client, this.settings.mailbox);
    const lock = await client.getMailboxLock(mailbox);
    try {
      const uidValidity = currentUidValidity(client);
      let lastUid = 0;

      while (!this.stopping) {
        this.newMail = false;
        const uids = await searchUidsAbove(client, mailbox, lastUid);
        if (uids.length === 0) {
          return;
        }

        for (let i = 0; i < uids.length && !this.stopping; i += this.settings.batchSize) {
          const batch = uids.slice(i, i + this.settings.batchSize);
          for (const message of await fetchMetadata(client, batch)) {
            if (this.stopping) {
              return;
            }
            assertUidValidity(client, mailbox, uidValidity, message.uid);
            await this.handleMessage(client, mailbox, uidValidity, message, summary);
          }
        }
        lastUid = uids[uids.length - 1];
      }
    } finally {
      lock.release();
    }
  }

  private async handleMessage(
    client: ImapFlow,
    mailbox: string,
    uidValidity: string,
    metadata: FetchMessageObject,
    summary: DrainSummary,
  ): Promise<void> {
    const { uid } = metadata;
    const { maxMessageBytes } = this.settings;
    summary.seen += 1;

    if ((metadata.size ?? 0) > maxMessageBytes) {
      await this.moveOversize(client, mailbox, uid, metadata.size ?? 0, summary);
      return;
    }

    const message = await client.fetchOne(String(uid), { uid: true, source: true }, { uid: true });
    if (!message || !message.source) {
      summary.vanished += 1;
      this.log.debug({ mailbox, uid }, 'Message removed by another client before download');
      return;
    }

    // RFC822.SIZE is the server's own figure; the downloaded bytes are checked as well.
    if (message.source.length > maxMessageBytes) {
      await this.moveOversize(client, mailbox, uid, message.source.length, summary);
      return;
    }

    const messageId = metadata.envelope?.messageId;
    const input: ImapRawInput = {
      bytes: message.source,
      name: imapUrl(this.settings, mailbox, uidValidity, uid),
      source: 'imap',
      origin: { mailbox, uid, uidValidity, ...(messageId ? { messageId } : {}) },
    };

    let outcome: IngestResult;
    try {
      outcome = await this.ingest(input);
    } catch (err) {
      summary.errors += 1;
      summary.left += 1;
      throw new ImapPollError(
        'ingest-failed',
        `Storing message UID ${uid} from mailbox ${mailbox} failed; it stays there for the next attempt`,
        { mailbox, uid, cause: err },
      );
    }

    summary.reportsStored += outcome.reportsStored;
    summary.reportsDuplicate += outcome.reportsDuplicate;
    await this.settle(client, mailbox, uid, outcome, summary);
  }

  // Moves a message according to the committed outcome of its ingest.
  private async settle(
    client: ImapFlow,
    mailbox: string,
    uid: number,
    outcome: IngestResult,
    summary: DrainSummary,
  ): Promise<void> {
    const fields = { mailbox, uid, rawInputId: outcome.rawInputId, status: outcome.status };

    switch (outcome.status) {
      case 'done':
      case 'partial':
        this.log.debug({ ...fields, reportsStored: outcome.reportsStored }, 'Message ingested');
        await this.move(client, mailbox, uid, this.settings.doneMailbox, summary, 'movedToDone');
        return;
      case 'quarantined':
        this.log.warn({ ...fields, errors: outcome.errors }, 'Message quarantined');
        await this.move(
          client,
          mailbox,
          uid,
          this.settings.failedMailbox,
          summary,
          'movedToFailed',
        );
        return;
      case 'claimed-elsewhere':
        // Another process has claimed this input and moves the message once it has committed.
        this.log.debug(fields, 'Message claimed by another process, leaving it');
        summary.left += 1;
        return;
      default:
        this.log.error(fields, 'Unknown ingest status, leaving the message');
        summary.errors += 1;
        summary.left += 1;
    }
  }

  private async moveOversize(
    client: ImapFlow,
    mailbox: string,
    uid: number,
    size: number,
    summary: DrainSummary,
  ): Promise<void> {
    summary.oversize += 1;
    this.log.warn(
      { mailbox, uid, size, maxMessageBytes: this.settings.maxMessageBytes },
      'Message too large, moving it to the failed mailbox unread',
    );
    await this.move(client, mailbox, uid, this.settings.failedMailbox, summary, 'movedToFailed');
  }

  // imapflow sends UID MOVE when the server has MOVE (RFC 6851), else COPY, \Deleted and EXPUNGE.
  private async move(
    client: ImapFlow,
    mailbox: string,
    uid: number,
    targetName: string,
    summary: DrainSummary,
    counter: 'movedToDone' | 'movedToFailed',
  ): Promise<void> {
    const target = resolveMailboxPath(client, targetName);
    const result = await client.messageMove(String(uid), target, { uid: true });
    if (result && result.uidMap?.has(uid)) {
      summary[counter] += 1;
      return;
    }

    // Without a COPYUID for this UID, find out whether the message is still here.
    const remaining = await client.search({ uid: String(uid) }, { uid: true });
    if (!remaining) {
      throw new ImapPollError(
        'search-failed',
        `Searching mailbox ${mailbox} for UID ${uid} failed`,
        {
          mailbox,
          uid,
        },
      );
    }
    if (remaining.includes(uid)) {
      summary.errors += 1;
      summary.left += 1;
      this.log.error({ mailbox, uid, target }, 'Moving the message failed, leaving it');
      return;
    }

    // A server without UIDPLUS never returns COPYUID, so an absent message counts as moved there.
    if (result && client.capabilities.has('UIDPLUS')) {
      summary.vanished += 1;
      this.log.debug({ mailbox, uid, target }, 'Message removed by another client before the move');
    } else {
      summary[counter] += 1;
    }
  }

  // Resolves when new mail is announced, the connection closes, the poll interval passes or
  // the poller is stopped or asked for a drain.
  private async waitForNewMail(client: ImapFlow): Promise<void> {
    if (this.newMail) {
      return;
    }
    if (!client.usable) {
      throw new ImapPollError('connection-lost', 'IMAP connection closed after the drain', {
        mailbox: this.settings.mailbox,
      });
    }

    const hasIdle = client.capabilities.has('IDLE');
    let waitMs = hasIdle ? IDLE_REDRAIN_MS : this.settings.pollSeconds * 1000;
    // A message left because another process held the same input may stay unmoved when that
    // process read the input from elsewhere (a file, say), so it is looked at again soon.
    if (this.leftInMailbox > 0) waitMs = Math.min(waitMs, LEFT_REDRAIN_MS);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, waitMs);
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = finish;

      // The next command of the following drain ends the IDLE, which settles this promise.
      if (hasIdle) {
        client.idle().catch((err: unknown) => this.log.debug({ err }, 'IDLE ended with an error'));
      }
    });
    this.wake = null;

    if (!client.usable && !this.stopping) {
      throw new ImapPollError('connection-lost', 'IMAP connection closed while waiting for mail', {
        mailbox: this.settings.mailbox,
      });
    }
  }

  private async sleep(ms: number): Promise<void> {
    if (this.stopping) {
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = finish;
    });
    this.wake = null;
  }

  private logSummary(summary: DrainSummary): void {
    const level = summary.seen > 0 ? 'info' : 'debug';
    this.log[level]({ mailbox: this.settings.mailbox, ...summary }, 'IMAP drain finished');
  }

  private withSummary(err: unknown, summary: DrainSummary): unknown {
    if (err instanceof ImapPollError) {
      err.summary = summary;
      return err;
    }

    // imapflow's own message is often just "Command failed", and the server's response text explains it.
    const { host, port, user, mailbox } = this.settings;
    const failure = err as {
      responseText?: string;
      message?: string;
      authenticationFailed?: boolean;
    };
    const reason = failure?.responseText ?? failure?.message ?? String(err);
    const wrapped = failure?.authenticationFailed
      ? new ImapPollError(
          'login-failed',
          `IMAP login as ${user} on ${host}:${port} failed: ${reason}. Check the IMAP user and password`,
          { mailbox, cause: err },
        )
      : new ImapPollError(
          'imap-failed',
          `IMAP drain of mailbox ${mailbox} on ${host}:${port} failed: ${reason}`,
          { mailbox, cause: err },
        );
    wrapped.summary = summary;
    return wrapped;
  }
}

/**
 * Connects, drains every message of the mailbox once and logs out: `dmarc-lens poll --once`.
 * @throws ImapPollError when the drain stopped early, with `summary` set
 */
export function pollOnce(config: ImapPollerConfig, deps: ImapPollerDeps): Promise<DrainSummary> {
  return new ImapPoller(config, deps).drainOnce();
}

function emptySummary(): DrainSummary {
  return {
    seen: 0,
    movedToDone: 0,
    movedToFailed: 0,
    left: 0,
    vanished: 0,
    oversize: 0,
    errors: 0,
    reportsStored: 0,
    reportsDuplicate: 0,
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}

/** Delay before attempt `failures + 1`: doubles from `retryInitialMs` up to `retryMaxMs`. */
export function retryDelay(
  failures: number,
  settings: Pick<Settings, 'retryInitialMs' | 'retryMaxMs'>,
): number {
  const exponent = Math.min(failures - 1, 30);
  return Math.min(settings.retryMaxMs, settings.retryInitialMs * 2 ** exponent);
}

// Configured names use `/` between levels. Servers such as Dovecot with maildir use `.` and reject
// `/` in a name, so the server's delimiter and personal namespace prefix are applied here.
function resolveMailboxPath(client: ImapFlow, name: string): string {
  if (name.toUpperCase() === 'INBOX') {
    return 'INBOX';
  }
  const delimiter = client.namespace?.delimiter;
  const prefix = client.namespace?.prefix ?? '';
  const path = delimiter && delimiter !== '/' ? name.split('/').join(delimiter) : name;
  return prefix && !path.startsWith(prefix) ? prefix + path : path;
}

function currentUidValidity(client: ImapFlow): string {
  return client.mailbox ? String(client.mailbox.uidValidity) : '';
}

// A UID only names the same message while UIDVALIDITY is unchanged (RFC 9051 §2.3.1.1). Moving by
// a stale UID could file an unread message as done, so the drain stops and starts over instead.
function assertUidValidity(client: ImapFlow, mailbox: string, expected: string, uid: number) {
  const actual = currentUidValidity(client);
  if (actual !== expected) {
    throw new ImapPollError(
      'uidvalidity-changed',
      `UIDVALIDITY of mailbox ${mailbox} changed from ${expected} to ${actual} before UID ${uid}`,
      { mailbox, uid },
    );
  }
}

// NOTE: the search returns every UID above `lastUid` at once, about 8 bytes per message in the
// mailbox. Only the messages themselves are fetched one at a time.
async function searchUidsAbove(client: ImapFlow, mailbox: string, lastUid: number) {
  const found = await client.search({ uid: `${lastUid + 1}:*` }, { uid: true });
  if (!found) {
    throw new ImapPollError('search-failed', `Searching mailbox ${mailbox} for new UIDs failed`, {
      mailbox,
    });
  }

  // `n:*` is the range between n and the highest UID, so it matches that UID even when n is above it.
  return found.filter((uid) => uid > lastUid).sort((a, b) => a - b);
}

async function fetchMetadata(client: ImapFlow, uids: number[]): Promise<FetchMessageObject[]> {
  const messages = await client.fetchAll(
    uids,
    { uid: true, size: true, envelope: true },
    { uid: true },
  );
  return messages.sort((a, b) => a.uid - b.uid);
}

// An IMAP URL (RFC 5092) names the message without the password.
function imapUrl(settings: Settings, mailbox: string, uidValidity: string, uid: number): string {
  const user = encodeURIComponent(settings.user);
  const path = encodeURIComponent(mailbox).replace(/%2F/g, '/');
  return `imap://${user}@${settings.host}:${settings.port}/${path};UIDVALIDITY=${uidValidity}/;UID=${uid}`;
}
