/** Exponential backoff with jitter, for retries against a database or mail server that is down. */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly initialMs = 1000,
    private readonly maxMs = 60_000,
  ) {}

  /** Delay before the next attempt; grows with each failure up to the cap. */
  nextDelay(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** this.failures);
    this.failures += 1;
    // Up to 20% jitter so that several instances do not retry in step.
    return Math.round(base * (0.8 + Math.random() * 0.2));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
