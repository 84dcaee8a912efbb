import { parseDmarcRecord } from '../analyze/policy.js';
import type { WhatIfReport, WhatIfRow } from '../analyze/service.js';
import type { Runtime } from '../runtime.js';
import {
  describeWindow,
  formatCount,
  openCurrentAnalysis,
  writeStdout,
  type AnalysisCommandOptions,
} from './recommend.js';

interface WhatIfOptions extends AnalysisCommandOptions {
  domain: string;
  policy: string;
}

/**
 * `dmarc-lens whatif`: replays the stored history of a domain under a candidate policy and
 * prints the messages that would be quarantined or rejected, per service and unattributed.
 * Returns 2 when the policy is not a valid DMARC record.
 */
export async function runWhatIf(runtime: Runtime, options: WhatIfOptions): Promise<number> {
  try {
    parseDmarcRecord(options.policy, options.domain);
  } catch (error) {
    process.stderr.write(`dmarc-lens: ${(error as Error).message}\n`);
    return 2;
  }

  const analysis = await openCurrentAnalysis(runtime);
  const { filter, results } = await analysis.whatIf(
    {
      domain: options.domain,
      from: options.from?.toISOString().slice(0, 10),
      to: options.to?.toISOString().slice(0, 10),
    },
    options.policy,
  );
  const result = results[0];

  if (options.format === 'json') {
    await writeStdout(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  await writeStdout(formatWhatIf(result, describeWindow(filter)));
  return 0;
}

const COLUMNS: [string, keyof WhatIfRow][] = [
  ['messages', 'messages'],
  ['pass', 'pass'],
  ['overridden', 'overridden'],
  ['delivered', 'delivered'],
  ['quarantine', 'quarantine'],
  ['reject', 'reject'],
];

function formatWhatIf(result: WhatIfReport, window: string): string {
  const rows: [string, WhatIfRow][] = [
    ...result.services.map((row): [string, WhatIfRow] => [row.service, row]),
    ['(unattributed)', result.unattributed],
    ['total', result.total],
  ];
  const table = [
    ['service', ...COLUMNS.map(([title]) => title)],
    ...rows.map(([name, row]) => [
      name,
      ...COLUMNS.map(([, key]) => formatCount(row[key] as number)),
    ]),
  ];
  const widths = table[0].map((_, index) => Math.max(...table.map((cells) => cells[index].length)));
  const lines = [
    `What-if for ${result.domain}, ${window}`,
    `Candidate: ${result.policy}`,
    `Published: ${result.current_policy ?? 'unknown (no report about this domain)'}`,
    '',
    ...table.map((cells) =>
      cells
        .map((cell, index) => (index === 0 ? cell.padEnd(widths[0]) : cell.padStart(widths[index])))
        .join('  '),
    ),
  ];
  if (result.other_domain_messages > 0) {
    lines.push(
      '',
      `${formatCount(result.other_domain_messages)} messages From other domains are not covered by this policy.`,
    );
  }
  if (result.notes.length > 0) lines.push('', 'Notes:', ...result.notes.map((note) => `- ${note}`));
  return `${lines.join('\n')}\n`;
}
