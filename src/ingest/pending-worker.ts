import type { Logger } from 'pino';

import { findPendingRawInputs } from '../store/raw-inputs.js';
import { Backoff, sleep } from './backoff.js';
import { processStoredInput, type IngestContext, type IngestOutcome } from './pipeline.js';

/**
 * Finishes raw inputs that were stored but never processed: those a crash or a database
 * outage interrupted, and those `reprocess` reopened. Several instances can run it at once;
 * each input is claimed with a row lock.
 */
export class PendingInputWorker {
  private readonly controller = new AbortController();
  private running: Promise<void> | null = null;
  private readonly backoff = new Backoff(1000, 60_000);
  private readonly log: Logger;

  constructor(
    private readonly context: IngestContext,
    private readonly intervalSeconds = 30,
    private readonly onProcessed: (outcome: IngestOutcome) => void = () => {},
  ) {
    this.log = context.log.child({ component: 'pending-inputs' });
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.controller;
    while (!signal.aborted) {
      try {
        await this.drainOnce();
        this.backoff.reset();
        await sleep(this.intervalSeconds * 1000, signal);
      } catch (error) {
        const delay = this.backoff.nextDelay();
        this.log.error(
          { err: error, retryInMs: delay },
          'Processing pending inputs failed; retrying',
        );
        await sleep(delay, signal);
      }
    }
  }

  /** Processes every pending input once; returns how many were finished here. */
  async drainOnce(): Promise<number> {
    let finished = 0;
    const seen = new Set<number>();
    for (;;) {
      const ids = (await findPendingRawInputs(this.context.pool, 50)).filter((id) => !seen.has(id));
      if (ids.length === 0 || this.controller.signal.aborted) return finished;
      for (const id of ids) {
        seen.add(id);
        if (this.controller.signal.aborted) return finished;
        const outcome = await processStoredInput(this.context, id);
        if (outcome.status === 'claimed-elsewhere') continue;
        finished += 1;
        this.log.info({ rawInputId: id, status: outcome.status }, 'Processed pending input');
        this.onProcessed(outcome);
      }
    }
  }
}
