import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'dmarc-lens.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`npm run build` first) and collects its output. */
export function runCli(
  args: string[],
  env: Record<string, string>,
  options: { killAfterMs?: number; signal?: NodeJS.Signals; cwd?: string } = {},
): Promise<CliResult> & { child: ChildProcess; output(): { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  if (options.killAfterMs !== undefined) {
    setTimeout(() => child.kill(options.signal ?? 'SIGKILL'), options.killAfterMs);
  }
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return Object.assign(done, { child, output: () => ({ stdout, stderr }) });
}
