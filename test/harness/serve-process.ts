import { runCli, type CliResult } from '../helpers/cli.js';

/** A `dmarc-lens serve` child process, listening on a free loopback port. */
export interface ServeProcess {
  port: number;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<CliResult>;
  /** The JSON log lines written so far, parsed; lines that are not JSON are skipped. */
  logs(): LogLine[];
  /** The last lines of stderr as written, for assertion messages. */
  stderrTail(lines?: number): string;
  /**
   * Resolves as `work` does, but rejects with the process output as soon as the process exits,
   * so that a crash fails a wait at once instead of at its timeout.
   */
  whileRunning<T>(work: Promise<T>): Promise<T>;
  /** Sends SIGTERM and returns the exit and how long it took, in milliseconds. */
  terminate(): Promise<CliResult & { stopMs: number }>;
  kill(): Promise<CliResult>;
}

export interface LogLine {
  level: number;
  msg: string;
  time: number;
  [field: string]: unknown;
}

/**
 * Starts `serve` from the built CLI (`npm run build` first) with the given environment, and
 * resolves once it logs that it is serving.
 * @throws Error with the process output when it exits or stays silent for `timeoutMs`
 */
export async function startServe(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServeProcess> {
  // Reverse DNS stays off whatever the calling environment says: lookups would leave loopback.
  const run = runCli(['serve'], {
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: '0',
    REVERSE_DNS: 'off',
    ...env,
  });
  const logs = () => parseLogLines(run.output().stderr);

  const serving = waitFor(
    'serve to log that it is serving',
    async () => {
      const line = logs().find((entry) => entry.msg === 'dmarc-lens is serving');
      return line ? Number(line.port) : null;
    },
    timeoutMs,
  );
  const exitedEarly = run.then((result) => {
    throw new Error(
      `serve exited with code ${result.code} and signal ${result.signal} before serving:\n${result.stderr}`,
    );
  });
  const port = await Promise.race([serving, exitedEarly]).catch((error: unknown) => {
    run.child.kill('SIGKILL');
    throw error;
  });
  // Once serving, a later exit is the caller's to inspect.
  exitedEarly.catch(() => {});

  return {
    port,
    pid: run.child.pid as number,
    exited: run,
    logs,
    stderrTail: (lines = 30) => run.output().stderr.split('\n').slice(-lines).join('\n'),
    whileRunning: <T>(work: Promise<T>) => {
      const crashed = run.then((result): never => {
        const tail = result.stderr.split('\n').slice(-30).join('\n');
        throw new Error(
          `serve exited with code ${result.code} and signal ${result.signal} while running:\n${tail}`,
        );
      });
      return Promise.race([work, crashed]);
    },
    async terminate() {
      const startedAt = Date.now();
      run.child.kill('SIGTERM');
      const result = await run;
      return { ...result, stopMs: Date.now() - startedAt };
    },
    async kill() {
      run.child.kill('SIGKILL');
      return run;
    },
  };
}

export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // A line cut off by SIGKILL.
    }
  }
  return lines;
}

/**
 * Polls `probe` until it returns a value other than null. An error thrown by the probe counts
 * as not yet, except on the last attempt, whose error is the cause of the timeout.
 */
export async function waitFor<T>(
  description: string,
  probe: () => Promise<T | null>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
