import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { ingestInput } from '../../src/ingest/pipeline.js';
import type { TestRuntime } from '../helpers/database.js';
import { FIXTURES, hostileReportXml, ingestFixture } from './harness.js';

/**
 * Ingests the data the API and browser tests expect: five owned reports over two days, one
 * foreign report, one unreadable input, and one input quarantined for a limit that was later
 * raised. Returns the id of that last input.
 *
 * Owned totals: 55 messages, 38 passing, 9 records, 6 sources. 2025-12-05 has 21 pass and
 * 14 fail; 2025-12-06 (mail.example.com, gzipped, one record with disposition quarantine)
 * has 17 pass and 3 fail.
 */
export async function seedDashboardData(
  runtime: TestRuntime,
): Promise<{ limitQuarantinedId: number }> {
  await ingestFixture(runtime, 'rfc7489-google.xml');
  await ingestFixture(runtime, 'draft-no-version.xml');
  await ingestFixture(runtime, 'rfc9990-namespaced.xml');
  await ingestFixture(runtime, 'foreign-domain.xml');
  await ingestFixture(runtime, 'truncated.xml');
  await ingestFixture(runtime, 'hostile.xml', Buffer.from(hostileReportXml()));

  const nextDay = fs
    .readFileSync(path.join(FIXTURES, 'rfc7489-google.xml'), 'utf8')
    .replace('<report_id>5717107811868587391</report_id>', '<report_id>next-day-1</report_id>')
    .replace('<begin>1764892800</begin>', '<begin>1764979200</begin>')
    .replace('<end>1764979199</end>', '<end>1765065599</end>')
    .replace('<domain>example.com</domain>', '<domain>mail.example.com</domain>')
    .replace(/<count>3<\/count>\s*<policy_evaluated>\s*<disposition>none/, (match) =>
      match.replace('none', 'quarantine'),
    );
  await ingestFixture(runtime, 'next-day.xml.gz', gzipSync(Buffer.from(nextDay)));

  // A report quarantined under a record limit of 1, which the app's normal limits accept: the
  // case of an input that a later version can read.
  const limited = await ingestInput(
    { ...runtime.ingest, limits: { ...runtime.ingest.limits, maxRecordsPerReport: 1 } },
    {
      bytes: Buffer.from(
        nextDay.replace('next-day-1', 'was-too-long-1').replace('mail.example.com', 'example.com'),
      ),
      name: 'was-too-long.xml',
      source: 'file',
      origin: {},
    },
  );
  if (limited.status !== 'quarantined') {
    throw new Error(`Expected the limited input to be quarantined, got ${limited.status}`);
  }
  return { limitQuarantinedId: limited.rawInputId };
}
