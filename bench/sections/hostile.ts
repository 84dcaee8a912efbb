import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { HOSTILE_CASES, type HostileCase } from '../../src/bench/hostile-cases.js';
import type { ParseLimits } from '../../src/parse/limits.js';
import { openChildDatabase, warmUpChildDatabase, type BenchContext } from '../lib/context.js';
import { MIB, runCli } from '../lib/measure.js';

const SECTION = 'hostile input';

// The cases a quick run keeps: those that could make memory grow if a cap failed.
const QUICK_CASES = new Set(['gzip bomb', 'deep nesting']);

// The environment variables that set each limit in the CLI. Limits without one cannot be set
// in a child process.
const LIMIT_VARIABLES: Partial<Record<keyof ParseLimits, string>> = {
  maxInputBytes: 'MAX_INPUT_BYTES',
  maxDecompressedBytes: 'MAX_DECOMPRESSED_BYTES',
  maxCompressionRatio: 'MAX_COMPRESSION_RATIO',
  maxAttachments: 'MAX_ATTACHMENTS',
  maxContainerDepth: 'MAX_CONTAINER_DEPTH',
  maxXmlDepth: 'MAX_XML_DEPTH',
  maxRecordsPerReport: 'MAX_RECORDS_PER_REPORT',
  maxValueLength: 'MAX_VALUE_LENGTH',
};

/**
 * Measures the peak RSS of `dmarc-lens import` on each hostile case, one child process per case, next to
 * the peak RSS of importing one small valid report.
 */
export async function benchHostileCases(context: BenchContext): Promise<void> {
  const cases = HOSTILE_CASES.filter((item) => !context.quick || QUICK_CASES.has(item.name));
  const database = await openChildDatabase(context, 'hostile');
  const mismatches: string[] = [];
  try {
    const baseline = await warmUpChildDatabase(context, database);
    context.results.add({
      section: SECTION,
      name: `one small valid report on ${database.kind}: peak RSS`,
      value: baseline.maxRssMib,
      unit: 'MiB',
    });

    for (const [index, item] of cases.entries()) {
      const env = limitEnv(item);
      if (!env) {
        context.results.skip(
          `${SECTION}: ${item.name}`,
          'its limits include one that no environment variable sets',
        );
        continue;
      }
      const bytes = item.build();
      const file = join(context.workDir, `hostile-${index}.bin`);
      await writeFile(file, bytes);
      context.progress(`hostile: ${item.name} (${(bytes.length / MIB).toFixed(2)} MiB)`);
      const run = await runCli(['import', file], { ...database.env, ...env }, context.workDir);
      const mismatch = checkOutcome(item, run.code, run.stdout);
      if (mismatch) mismatches.push(mismatch);
      context.results.add({
        section: SECTION,
        name: `${item.name}: peak RSS`,
        value: run.maxRssMib,
        unit: 'MiB',
        note: `expected ${item.expected}`,
      });
    }
  } finally {
    await database.dispose();
  }
  if (mismatches.length > 0) {
    throw new Error(`Hostile cases that did not end as expected:\n${mismatches.join('\n')}`);
  }
}

function limitEnv(item: HostileCase): Record<string, string> | null {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(item.limits ?? {})) {
    const variable = LIMIT_VARIABLES[key as keyof ParseLimits];
    if (!variable) return null;
    env[variable] = String(value);
  }
  return env;
}

/** Describes how the import's outcome differs from the case's expectation, or returns null. */
function checkOutcome(item: HostileCase, code: number | null, stdout: string): string | null {
  if (item.expected === 'parse') {
    return code === 0 ? null : `${item.name}: exit ${code}, expected 0\n${stdout}`;
  }
  if (code === 1 && stdout.includes(`[${item.expected}]`)) return null;
  return `${item.name}: exit ${code}, expected 1 with [${item.expected}]\n${stdout}`;
}
