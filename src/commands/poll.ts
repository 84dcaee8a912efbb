import { ingestInput } from '../ingest/pipeline.js';
import {
  ImapPollError,
  pollOnce,
  type DrainSummary,
  type ImapPollerConfig,
  type ImapPollerDeps,
} from '../ingest/imap-poller.js';
import type { Runtime } from '../runtime.js';
import { rollUpAllReports } from '../store/rollups.js';

/** Builds the poller's settings and dependencies from the configuration. */
export function imapPollerSetup(runtime: Runtime): {
  config: ImapPollerConfig;
  deps: ImapPollerDeps;
} {
  const imap = runtime.config.imap;
  if (!imap) throw new Error('IMAP_HOST is not set: there is no mailbox to poll');
  return {
    config: {
      host: imap.host,
      port: imap.port,
      secure: imap.secure,
      user: imap.user,
      password: imap.password,
      mailbox: imap.mailbox,
      doneMailbox: imap.doneMailbox,
      failedMailbox: imap.failedMailbox,
      pollSeconds: imap.pollSeconds,
      maxMessageBytes: runtime.config.limits.maxInputBytes,
    },
    deps: {
      // The poller adds its own component field.
      logger: runtime.log,
      ingest: (input) => ingestInput(runtime.ingest, input),
    },
  };
}

/** `dmarc-lens poll --once`: drains the mailbox, prints what happened and exits. */
export async function runPollOnce(runtime: Runtime): Promise<number> {
  const { config, deps } = imapPollerSetup(runtime);
  let summary: DrainSummary;
  let failure: ImapPollError | null = null;
  try {
    summary = await pollOnce(config, deps);
  } catch (error) {
    if (!(error instanceof ImapPollError) || !error.summary) throw error;
    // What the drain did before it stopped still counts; the rest stays in the mailbox.
    failure = error;
    summary = error.summary;
  }
  await rollUpAllReports(runtime.db.pool, runtime.log);
  process.stdout.write(
    [
      `Messages seen:        ${summary.seen}`,
      `Moved to ${config.doneMailbox}: ${summary.movedToDone}`,
      `Moved to ${config.failedMailbox}: ${summary.movedToFailed} (${summary.oversize} too large to read)`,
      `Left in ${config.mailbox}: ${summary.left}`,
      `Reports stored:       ${summary.reportsStored}`,
      `Reports duplicate:    ${summary.reportsDuplicate}`,
      `Errors:               ${summary.errors}`,
    ].join('\n') + '\n',
  );
  if (failure) {
    process.stderr.write(
      `dmarc-lens: the drain stopped early [${failure.code}]: ${failure.message}\n`,
    );
    return 1;
  }
  return summary.errors > 0 ? 1 : 0;
}
