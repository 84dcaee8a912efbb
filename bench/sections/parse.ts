import { gunzipSync } from 'node:zlib';
import { SaxesParser } from 'saxes';

import { generateTypicalReports, type TypicalReport } from '../../src/bench/typical-reports.js';
import { readInput } from '../../src/parse/index.js';
import type { BenchContext } from '../lib/context.js';
import { MIB, timed } from '../lib/measure.js';

const SECTION = 'parse';
// The product reads documents in slices of this size; the baseline feeds saxes the same way.
const SLICE_BYTES = 1024 * 1024;

/**
 * Parse throughput of the streaming reader on typical reports, against saxes alone (events
 * only, nothing built) on the same bytes, gunzip and UTF-8 decoding included in both.
 */
export async function benchParse(context: BenchContext): Promise<void> {
  const count = context.quick ? 300 : 3000;
  const reports = generateTypicalReports(count, { seed: context.seed });
  const records = reports.reduce((sum, report) => sum + report.records, 0);
  const xmlMib = reports.reduce((sum, report) => sum + report.xmlBytes, 0) / MIB;
  const fileMib = reports.reduce((sum, report) => sum + report.bytes.length, 0) / MIB;
  context.progress(
    `parse: ${count} reports, ${records} records, ${xmlMib.toFixed(1)} MiB of XML (${fileMib.toFixed(1)} MiB as files)`,
  );

  // One pass over a tenth of the set first, so that both sides run compiled code.
  const warmUp = reports.slice(0, Math.ceil(count / 10));
  await readAll(warmUp);
  saxesAll(warmUp);

  // Rounds alternate between the two, and the fastest of each counts, so that a burst of other
  // load on the machine does not land on one side only.
  let productSeconds = Infinity;
  let baselineSeconds = Infinity;
  for (let round = 0; round < (context.quick ? 1 : 3); round++) {
    const product = await timed(() => readAll(reports));
    if (product.result !== records) {
      throw new Error(`The reader returned ${product.result} records, expected ${records}`);
    }
    productSeconds = Math.min(productSeconds, product.seconds);
    const baseline = await timed(async () => saxesAll(reports));
    baselineSeconds = Math.min(baselineSeconds, baseline.seconds);
  }

  const add = (name: string, value: number, unit: string, note?: string) =>
    context.results.add({ section: SECTION, name, value, unit, note });
  add('reports', count, 'reports', '70% gzipped, the rest plain XML');
  add('records', records, 'records');
  add('XML read', xmlMib, 'MiB', 'decompressed size');
  add('reader: reports/s', count / productSeconds, 'reports/s');
  add('reader: records/s', records / productSeconds, 'records/s');
  add('reader: XML MiB/s', xmlMib / productSeconds, 'MiB/s');
  add('saxes alone: XML MiB/s', xmlMib / baselineSeconds, 'MiB/s', 'events only, same bytes');
  add('reader / saxes alone', baselineSeconds / productSeconds, 'ratio');
}

async function readAll(reports: TypicalReport[]): Promise<number> {
  let records = 0;
  for (const report of reports) {
    for await (const part of readInput(report.bytes, report.name)) {
      if (part.kind === 'error') throw part.error;
      for await (const event of part.events) {
        if (event.kind === 'records') records += event.records.length;
      }
    }
  }
  return records;
}

function saxesAll(reports: TypicalReport[]): number {
  let events = 0;
  const count = () => {
    events += 1;
  };
  for (const report of reports) {
    const xml = report.format === 'gz' ? gunzipSync(report.bytes) : report.bytes;
    // The same options as the product's reader.
    const parser = new SaxesParser({ position: true });
    parser.on('opentag', count);
    parser.on('closetag', count);
    parser.on('text', count);
    const decoder = new TextDecoder('utf-8');
    for (let offset = 0; offset < xml.length; offset += SLICE_BYTES) {
      parser.write(decoder.decode(xml.subarray(offset, offset + SLICE_BYTES), { stream: true }));
    }
    parser.close();
  }
  return events;
}
