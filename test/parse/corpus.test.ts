import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { extractDocuments } from '../../src/parse/containers.js';
import { DEFAULT_LIMITS, parseInput } from '../../src/parse/index.js';
import { AGGREGATE_DIR, corpusAvailable, listFiles } from '../helpers/corpus.js';

/**
 * Counts records and messages with regular expressions on the raw XML text: a reader that
 * shares no code with the parser, to check its counts against.
 */
function countIndependently(xml: string): { records: number; messages: number } {
  const records = xml.match(/<(?:\w+:)?record[\s>]/g)?.length ?? 0;
  let messages = 0;
  for (const match of xml.matchAll(/<(?:\w+:)?count>\s*(\d+)\s*<\/(?:\w+:)?count>/g)) {
    messages += Number(match[1]);
  }
  return { records, messages };
}

async function documentTexts(bytes: Buffer, name: string): Promise<string[]> {
  const texts: string[] = [];
  for await (const part of extractDocuments(bytes, name, DEFAULT_LIMITS, () => {})) {
    if (part.kind !== 'xml') continue;
    const chunks: Buffer[] = [];
    for await (const chunk of part.chunks) chunks.push(chunk);
    texts.push(Buffer.concat(chunks).toString('latin1'));
  }
  return texts;
}

describe.skipIf(!corpusAvailable())('shared corpus of real reports', () => {
  it('reads every aggregate file or names why not', async () => {
    const files = listFiles(AGGREGATE_DIR);
    const summary = { files: files.length, reports: 0, records: 0, messages: 0, rejected: 0 };
    const reasons = new Map<string, number>();

    for (const file of files) {
      const bytes = fs.readFileSync(path.join(AGGREGATE_DIR, file));
      const parsed = await parseInput(bytes, path.basename(file));

      // Every file is accounted for: reports, or at least one named error.
      expect(parsed.reports.length + parsed.errors.length, file).toBeGreaterThan(0);
      for (const error of parsed.errors) {
        expect(error.code, file).toMatch(/^[a-z-]+$/);
        expect(error.message, file).toContain(path.basename(file));
        reasons.set(error.code, (reasons.get(error.code) ?? 0) + 1);
      }
      if (parsed.reports.length === 0) summary.rejected += 1;

      // Reports read from a document match the independent count of that document.
      if (parsed.errors.length === 0) {
        const texts = await documentTexts(bytes, path.basename(file));
        const expected = texts.map(countIndependently);
        const actual = parsed.reports.map((report) => ({
          records: report.records.length,
          messages: report.records.reduce((sum, record) => sum + record.count, 0),
        }));
        expect(actual, file).toEqual(expected);
      }

      for (const report of parsed.reports) {
        summary.reports += 1;
        summary.records += report.records.length;
        summary.messages += report.records.reduce((sum, record) => sum + record.count, 0);
      }
    }

    const reasonText = [...reasons].map(([code, count]) => `${code} ${count}`).join(', ');
    console.log(
      `Corpus: ${summary.files} files, ${summary.reports} reports, ${summary.records} records, ` +
        `${summary.messages} messages; ${summary.rejected} files rejected (${reasonText})`,
    );
    expect(summary.reports).toBeGreaterThan(0);
  });
});
