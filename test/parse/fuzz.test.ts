import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

import { createRandom } from '../../src/demo/sample-reports.js';
import { isReportError, parseInput } from '../../src/parse/index.js';
import { AGGREGATE_DIR, corpusAvailable, listFiles } from '../helpers/corpus.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'reports');
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1500);

function seeds(): Buffer[] {
  const files = fs.readdirSync(FIXTURES).map((name) => fs.readFileSync(path.join(FIXTURES, name)));
  if (corpusAvailable()) {
    for (const file of listFiles(AGGREGATE_DIR).filter((name) => name.endsWith('.xml')).slice(0, 40)) {
      files.push(fs.readFileSync(path.join(AGGREGATE_DIR, file)));
    }
  }
  return files;
}

const ODD_VALUES = ['', '-1', '99999999999999999999', 'NaN', '1e400', '::', '0x7f.1', '&amp;', ' ', '\u0000'];
const TAGS = ['record', 'row', 'count', 'source_ip', 'date_range', 'begin', 'policy_published', 'domain', 'dkim'];

/** Applies one random mutation: bytes, tags or values. */
function mutate(input: Buffer, random: () => number): Buffer {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const text = input.toString('latin1');

  switch (Math.floor(random() * 7)) {
    case 0: {
      const bytes = Buffer.from(input);
      for (let i = 0; i < 1 + random() * 8; i++) bytes[Math.floor(random() * bytes.length)] = random() * 256;
      return bytes;
    }
    case 1:
      return input.subarray(0, Math.floor(random() * input.length));
    case 2: {
      const tag = pick(TAGS);
      return Buffer.from(text.replace(new RegExp(`<${tag}>`, 'g'), () => (random() < 0.5 ? '' : `<${tag}><${tag}>`)), 'latin1');
    }
    case 3: {
      const value = pick(ODD_VALUES);
      return Buffer.from(text.replace(/>([^<>]{1,40})</g, (match) => (random() < 0.2 ? `>${value}<` : match)), 'latin1');
    }
    case 4: {
      const start = Math.floor(random() * input.length);
      const slice = input.subarray(start, start + Math.floor(random() * 400));
      return Buffer.concat([input, slice, slice]);
    }
    case 5:
      return gzipSync(mutate(input, random));
    default: {
      const tag = pick(TAGS);
      return Buffer.from(text.replace(`</${tag}>`, ''), 'latin1');
    }
  }
}

describe('fuzzed reports', () => {
  it(`read or reject ${ITERATIONS} mutations with a named error`, async () => {
    const random = createRandom(Number(process.env.FUZZ_SEED ?? 20261204));
    const inputs = seeds();
    let reports = 0;
    let rejected = 0;

    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(inputs[i % inputs.length], random);
      let parsed;
      try {
        parsed = await parseInput(input, `fuzz-${i}`);
      } catch (error) {
        // Only named errors may leave the reader; anything else is a crash.
        expect.fail(`Mutation ${i} crashed the reader: ${(error as Error).stack}`);
      }
      for (const error of parsed.errors) {
        expect(isReportError(error), `mutation ${i}`).toBe(true);
        expect(error.code, `mutation ${i}`).toMatch(/^[a-z-]+$/);
      }
      expect(parsed.reports.length + parsed.errors.length, `mutation ${i}`).toBeGreaterThan(0);
      reports += parsed.reports.length;
      rejected += parsed.errors.length;
    }

    console.log(`Fuzz: ${ITERATIONS} mutations, ${reports} reports read, ${rejected} named errors`);
  });
});
