import type { Recommendation } from '../analyze/recommendations.js';
import { AnalysisService } from '../analyze/service.js';
import type { Runtime } from '../runtime.js';
import type { AnalysisFilter } from '../store/analysis.js';

/** Options shared by the analysis commands. Dates are UTC days, and `to` is inclusive. */
export interface AnalysisCommandOptions {
  domain?: string;
  from?: Date;
  to?: Date;
  format: 'text' | 'json';
}

/** Writes to stdout and waits for the pipe when it is full. */
export function writeStdout(chunk: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(chunk)) resolve();
    else process.stdout.once('drain', resolve);
  });
}

/** Formats a message count, with up to two decimals for the expected values under pct. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function day(date: Date | undefined): string | undefined {
  return date?.toISOString().slice(0, 10);
}

/**
 * Opens the analysis for a command and makes it current: loads SERVICES_FILE when it changed,
 * rolls up waiting reports and attributes waiting senders.
 * @throws CatalogError when SERVICES_FILE is invalid
 */
export async function openCurrentAnalysis(runtime: Runtime): Promise<AnalysisService> {
  const analysis = new AnalysisService({
    pool: runtime.db.pool,
    log: runtime.log,
    config: runtime.config,
  });
  await analysis.syncCatalogFile();
  await analysis.refresh();
  return analysis;
}

/** Describes the window of a filter, e.g. `2025-11-01 to 2025-11-30`. */
export function describeWindow(filter: Pick<AnalysisFilter, 'from' | 'to'>): string {
  if (filter.from === null && filter.to === null) return 'no data yet';
  return `${filter.from ?? 'the first day'} to ${filter.to ?? 'the last day'} (UTC)`;
}

/** `dmarc-lens recommend`: the current recommendations, as text or as a JSON array. */
export async function runRecommend(
  runtime: Runtime,
  options: AnalysisCommandOptions,
): Promise<number> {
  const analysis = await openCurrentAnalysis(runtime);
  const { filter, rows } = await analysis.recommendations({
    domain: options.domain,
    from: day(options.from),
    to: day(options.to),
  });

  if (options.format === 'json') {
    await writeStdout(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  await writeStdout(formatRecommendations(rows, describeWindow(filter)));
  return 0;
}

function formatRecommendations(items: Recommendation[], window: string): string {
  if (items.length === 0) return `No recommendations for ${window}.\n`;

  const lines = [`Recommendations for ${window}:`];
  let domain = '';
  for (const item of items) {
    if (item.domain !== domain) {
      domain = item.domain;
      lines.push('', domain);
    }
    const service = item.service === '' ? '' : ` ${item.service}`;
    lines.push(`  [${item.severity}] ${item.kind}${service}`);
    lines.push(`    ${item.summary}`);
    const evidence = Object.entries(item.evidence)
      .map(([name, value]) => `${name}=${formatCount(value)}`)
      .join(', ');
    lines.push(`    evidence: ${evidence}`);
    if (item.dns_record !== '') lines.push(`    publish: ${item.dns_record}`);
  }
  return `${lines.join('\n')}\n`;
}
