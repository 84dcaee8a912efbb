// Preloaded into a measured child process (node --import): at exit, writes the process's peak
// resident set size in KiB to the file named by BENCH_MAX_RSS_FILE.
//
// It reads VmHWM from /proc/self/status (Linux) rather than getrusage's ru_maxrss, because
// Linux carries ru_maxrss across fork and exec: a child forked from a large parent reports
// at least the parent's size. VmHWM belongs to the memory map that exec created.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_MAX_RSS_FILE;

function peakKib() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    if (match) return Number(match[1]);
  } catch {
    // Not Linux: fall through to getrusage.
  }
  return process.resourceUsage().maxRSS;
}

if (file) {
  process.on('exit', () => writeFileSync(file, String(peakKib())));
}
