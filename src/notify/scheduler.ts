/**
 * Runs alerting in `serve`: evaluates the rules every `scheduleMinutes` and soon after each
 * ingest batch (`wake`), and sends due messages and retries every minute.
 */
import type { Logger } from 'pino';

import { Backoff, sleep } from '../ingest/backoff.js';
import type { Alerting } from './alerting.js';

const TICK_MS = 60_000;

export class AlertScheduler {
  private readonly controller = new AbortController();
  private wakeUp = new AbortController();
  private woken = true;
  private running: Promise<void> | null = null;
  private lastEvaluation = 0;
  private readonly backoff = new Backoff(5_000, 15 * 60_000);
  private readonly log: Logger;

  constructor(
    private readonly alerting: Alerting,
    log: Logger,
    private readonly tickMs = TICK_MS,
  ) {
    this.log = log.child({ component: 'alert-scheduler' });
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Asks for an evaluation now, after an ingest batch. */
  wake(): void {
    this.woken = true;
    this.wakeUp.abort();
  }

  // NOTE: stop waits for a running evaluation. Right after tens of thousands of new senders,
  // stale table statistics can make the unattributed-sources query run for over a minute, so
  // SIGTERM waits that long too. Cancelling the query on stop would fix it.
  async stop(): Promise<void> {
    this.controller.abort();
    this.wakeUp.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.controller;
    const intervalMs = this.alerting.env.settings.scheduleMinutes * 60_000;
    while (!signal.aborted) {
      try {
        const evaluate = this.woken || Date.now() - this.lastEvaluation >= intervalMs;
        this.woken = false;
        this.wakeUp = new AbortController();
        if (evaluate) {
          // Set after success only, so that a failed evaluation is tried again on the next tick.
          await this.alerting.run();
          this.lastEvaluation = Date.now();
        } else {
          await this.alerting.deliverer.deliverDue();
        }
        this.backoff.reset();
        await sleep(this.tickMs, AbortSignal.any([signal, this.wakeUp.signal]));
      } catch (error) {
        const delay = this.backoff.nextDelay();
        this.woken = true;
        this.log.error(
          { err: error, retryInMs: delay },
          'Alert evaluation or delivery failed; retrying',
        );
        await sleep(delay, signal);
      }
    }
  }
}
