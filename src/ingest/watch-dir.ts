import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

import { Backoff, sleep } from './backoff.js';
import { ingestInput, type IngestContext, type IngestOutcome } from './pipeline.js';

export interface WatchDirOptions {
  directory: string;
  /** Seconds between scans of the folder. */
  intervalSeconds?: number;
  /** A file must be unchanged for this long before it is read, so half-copied files wait. */
  settleMs?: number;
}

export const DONE_FOLDER = 'done';
export const FAILED_FOLDER = 'failed';

/**
 * Ingests files dropped into WATCH_DIR, then moves each into `done/` or `failed/` beside it,
 * only after its outcome is committed. The folder is scanned on an interval rather than with
 * fs.watch, which misses events on network file systems and in containers.
 */
export class DirectoryWatcher {
  private readonly controller = new AbortController();
  private running: Promise<void> | null = null;
  private readonly backoff = new Backoff(1000, 60_000);
  private readonly log: Logger;
  /** Called after each file's outcome is committed. */
  onIngested: (outcome: IngestOutcome) => void = () => {};

  constructor(
    private readonly context: IngestContext,
    private readonly options: WatchDirOptions,
  ) {
    this.log = context.log.child({ component: 'watch-dir', directory: options.directory });
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Finishes the file in hand, then stops. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.controller;
    await fs.mkdir(path.join(this.options.directory, DONE_FOLDER), { recursive: true });
    await fs.mkdir(path.join(this.options.directory, FAILED_FOLDER), { recursive: true });
    this.log.info('Watching folder for reports');

    while (!signal.aborted) {
      try {
        await this.scanOnce();
        this.backoff.reset();
        await sleep((this.options.intervalSeconds ?? 5) * 1000, signal);
      } catch (error) {
        const delay = this.backoff.nextDelay();
        this.log.error({ err: error, retryInMs: delay }, 'Watch folder scan failed; retrying');
        await sleep(delay, signal);
      }
    }
  }

  /** Ingests every settled file in the folder once; returns the outcomes by file name. */
  async scanOnce(): Promise<Map<string, IngestOutcome>> {
    const outcomes = new Map<string, IngestOutcome>();
    const entries = await fs.readdir(this.options.directory, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));

    for (const entry of entries) {
      if (this.controller.signal.aborted) break;
      // Hidden files are editors' and copiers' temporary files.
      if (!entry.isFile() || entry.name.startsWith('.')) continue;

      const file = path.join(this.options.directory, entry.name);
      const stat = await fs.stat(file).catch(() => null);
      if (!stat || Date.now() - stat.mtimeMs < (this.options.settleMs ?? 2000)) continue;

      const outcome = await this.ingestFile(file, stat.size);
      if (outcome) outcomes.set(entry.name, outcome);
    }
    return outcomes;
  }

  private async ingestFile(file: string, size: number): Promise<IngestOutcome | null> {
    const name = path.basename(file);
    if (size > this.context.limits.maxInputBytes) {
      this.log.warn({ file: name, size }, 'File larger than MAX_INPUT_BYTES; moved to failed/');
      await this.moveAside(file, FAILED_FOLDER);
      return null;
    }

    const bytes = await fs.readFile(file).catch((error: NodeJS.ErrnoException) => {
      // Another instance moved it aside since the scan listed it.
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (!bytes) return null;
    const outcome = await ingestInput(this.context, {
      bytes,
      name,
      source: 'watch',
      origin: { path: path.resolve(file) },
    });
    // Another instance is reading the same bytes: leave the file for the next scan.
    if (outcome.status === 'claimed-elsewhere') return outcome;

    const folder = outcome.status === 'quarantined' ? FAILED_FOLDER : DONE_FOLDER;
    await this.moveAside(file, folder);
    this.onIngested(outcome);
    this.log.info(
      {
        file: name,
        status: outcome.status,
        reportsStored: outcome.reportsStored,
        reportsDuplicate: outcome.reportsDuplicate,
      },
      'Ingested file',
    );
    return outcome;
  }

  private async moveAside(file: string, folder: string): Promise<void> {
    const name = path.basename(file);
    let target = path.join(this.options.directory, folder, name);
    // Keep an earlier file of the same name: add a timestamp instead of overwriting it.
    if (await fs.stat(target).catch(() => null)) {
      target = path.join(this.options.directory, folder, `${Date.now()}-${name}`);
    }
    await fs.rename(file, target).catch((error: NodeJS.ErrnoException) => {
      // Another instance moved it first.
      if (error.code !== 'ENOENT') throw error;
    });
  }
}
