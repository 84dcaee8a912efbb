import type pg from 'pg';
import type { Logger } from 'pino';

import { Backoff, sleep } from '../ingest/backoff.js';
import { rollUpReports } from './rollups.js';

// How often the worker looks for reports that other instances stored.
const IDLE_SECONDS = 10;

/**
 * Rolls newly stored reports up into senders and the daily tables, soon after each ingest
 * (`wake`) and on an interval. A database outage pauses it with backoff; nothing is lost,
 * since unrolled reports are marked in the database.
 */
export class RollupWorker {
  private readonly controller = new AbortController();
  private running: Promise<void> | null = null;
  private wakeUp: AbortController = new AbortController();
  private readonly backoff = new Backoff(1000, 60_000);
  private readonly log: Logger;
  /** Called after each batch; used to re-run attribution and alerts. */
  onRolledUp: (reports: number) => void = () => {};

  constructor(
    private readonly pool: pg.Pool,
    log: Logger,
  ) {
    this.log = log.child({ component: 'rollups' });
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Asks for a run now, after an ingest. */
  wake(): void {
    this.wakeUp.abort();
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.wakeUp.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.controller;
    while (!signal.aborted) {
      try {
        let rolled = 0;
        for (
          let count = await rollUpReports(this.pool);
          count > 0;
          count = await rollUpReports(this.pool)
        ) {
          rolled += count;
          if (signal.aborted) break;
        }
        if (rolled > 0) {
          this.log.debug({ reports: rolled }, 'Rolled up reports');
          this.onRolledUp(rolled);
        }
        this.backoff.reset();
        this.wakeUp = new AbortController();
        await sleep(IDLE_SECONDS * 1000, AbortSignal.any([signal, this.wakeUp.signal]));
      } catch (error) {
        const delay = this.backoff.nextDelay();
        this.log.error({ err: error, retryInMs: delay }, 'Rolling up reports failed; retrying');
        await sleep(delay, signal);
      }
    }
  }
}
