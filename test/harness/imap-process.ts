import { readFileSync } from 'node:fs';

import { findImapPids, type DovecotServer } from './dovecot.js';

/** What `killDuringFetch` saw of the imap process it killed. */
export interface FetchKill {
  pid: number;
  /** Bytes the process had written since the burst began, when it was killed. */
  writtenBeforeKill: number;
}

/**
 * Waits for an `imap` process of this Dovecot that is not in `known`, such as the one serving
 * a client that just connected, and returns its pid.
 * @throws Error when none appears within `timeoutMs`
 */
export async function waitForNewImapPid(
  server: DovecotServer,
  known: Set<number>,
  timeoutMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const fresh = (await findImapPids(server)).filter((pid) => !known.has(pid));
    if (fresh.length === 1) return fresh[0];
    if (fresh.length > 1) {
      throw new Error(`Expected one new imap process, found ${fresh.length}: ${fresh.join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for a new imap process of the Dovecot on port ${server.port}`,
  );
}

/**
 * Kills the imap process `pid` with SIGKILL while it sends a large literal: once it has
 * written `burstBytes` without a pause, which only the body of a large message does.
 * Resolves with null when the process exits or `timeoutMs` passes without such a burst.
 */
export async function killDuringFetch(
  pid: number,
  { burstBytes = 1024 * 1024, timeoutMs = 30_000 } = {},
): Promise<FetchKill | null> {
  const deadline = Date.now() + timeoutMs;
  let previous = writtenBytes(pid);
  // The count when the process last paused, so that the bytes of this burst are known.
  let paused = previous;
  while (previous !== null && paused !== null && Date.now() < deadline) {
    // Sampling on every turn of the event loop catches a burst of a few milliseconds, while
    // the output of the child processes is still read.
    await new Promise((resolve) => setImmediate(resolve));
    const current = writtenBytes(pid);
    if (current === null) return null;
    if (current === previous) paused = current;
    if (current - paused >= burstBytes) {
      process.kill(pid, 'SIGKILL');
      return { pid, writtenBeforeKill: current - paused };
    }
    previous = current;
  }
  return null;
}

// `wchar` counts the bytes the process passed to write(2) and friends, sockets included.
function writtenBytes(pid: number): number | null {
  let io: string;
  try {
    io = readFileSync(`/proc/${pid}/io`, 'utf8');
  } catch {
    return null;
  }
  const match = /^wchar:\s+(\d+)$/m.exec(io);
  return match ? Number(match[1]) : null;
}
