import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'dmarc-lens.js');
const MAX_RSS_PROBE = join(import.meta.dirname, 'max-rss.mjs');

export const MIB = 1024 * 1024;

/** Runs `action` and returns its result with the elapsed wall time in seconds. */
export async function timed<T>(action: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const start = performance.now();
  const result = await action();
  return { result, seconds: (performance.now() - start) / 1000 };
}

/** Returns the value below which `share` (0–1) of the samples fall, by nearest rank. */
export function percentile(samples: number[], share: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(share * sorted.length));
  return sorted[rank - 1];
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Peak resident set size of the child, in MiB. */
  maxRssMib: number;
}

/**
 * Runs the built CLI as a child process and measures its wall time and peak RSS. The child
 * runs in `cwd` so that no `.env` of the working copy changes its settings.
 */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<ChildRun> {
  const rssFile = join(cwd, `max-rss-${process.pid}-${Date.now()}-${Math.random()}.txt`);
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, LOG_LEVEL: 'error', ...env })) {
    if (value !== undefined) childEnv[key] = value;
  }
  childEnv.BENCH_MAX_RSS_FILE = rssFile;

  const start = performance.now();
  const child = spawn(process.execPath, ['--import', MAX_RSS_PROBE, CLI, ...args], {
    cwd,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const { code, signal } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((done, fail) => {
    child.once('error', fail);
    child.once('close', (exitCode, exitSignal) => done({ code: exitCode, signal: exitSignal }));
  });
  const seconds = (performance.now() - start) / 1000;

  const kib = Number(await readFile(rssFile, 'utf8').catch(() => 'NaN'));
  await rm(rssFile, { force: true });
  return { code, signal, stdout, stderr, seconds, maxRssMib: kib / 1024 };
}

/**
 * Throws with the child's output when it did not exit with `expected`, so that a broken run
 * never turns into a figure.
 */
export function expectExit(run: ChildRun, expected: number, what: string): void {
  if (run.code === expected) return;
  throw new Error(
    `${what} exited with ${run.code ?? run.signal}, expected ${expected}\n` +
      `stdout: ${run.stdout.slice(-2000)}\nstderr: ${run.stderr.slice(-2000)}`,
  );
}

/** Reads `Records / messages:  N / M` from the import summary. */
export function importedRecords(stdout: string): number {
  const match = /Records \/ messages:\s+(\d+)/.exec(stdout);
  if (!match) throw new Error(`No record count in the import summary:\n${stdout}`);
  return Number(match[1]);
}
