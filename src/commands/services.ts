import { CatalogError } from '../analyze/catalog.js';
import { AnalysisService, type CatalogCheck } from '../analyze/service.js';
import type { Runtime } from '../runtime.js';
import { readCatalogFile } from '../store/catalog.js';
import { rollUpAllReports } from '../store/rollups.js';
import { formatCount, writeStdout } from './recommend.js';

interface ServicesCheckOptions {
  format: 'text' | 'json';
}

/**
 * `dmarc-lens services check [FILE]`: validates a catalog file (default SERVICES_FILE), then
 * reports what each of its rules would match in the stored reports, without changing the
 * catalog in the database. Returns 1 when the file is invalid, 2 when no file is named.
 */
export async function runServicesCheck(
  runtime: Runtime,
  file: string | undefined,
  options: ServicesCheckOptions,
): Promise<number> {
  const path = file ?? runtime.config.servicesFile;
  if (!path) {
    process.stderr.write('dmarc-lens: No catalog file to check: give FILE or set SERVICES_FILE\n');
    return 2;
  }

  let catalog;
  try {
    ({ catalog } = await readCatalogFile(path));
  } catch (error) {
    if (!(error instanceof CatalogError)) {
      process.stderr.write(`dmarc-lens: ${(error as Error).message}\n`);
      return 1;
    }
    for (const issue of error.issues) process.stderr.write(`${path}: ${issue}\n`);
    const count = error.issues.length;
    process.stderr.write(`${path}: invalid, ${count} ${count === 1 ? 'error' : 'errors'}\n`);
    return 1;
  }

  // Matches are counted on every stored report, rolled up first so that none is missing.
  await rollUpAllReports(runtime.db.pool, runtime.log);
  const analysis = new AnalysisService({
    pool: runtime.db.pool,
    log: runtime.log,
    config: runtime.config,
  });
  const check = await analysis.checkCatalog(catalog);

  if (options.format === 'json') {
    await writeStdout(`${JSON.stringify({ file: path, valid: true, ...check }, null, 2)}\n`);
    return 0;
  }
  await writeStdout(formatCheck(path, catalog.services.length, check));
  return 0;
}

function counted(count: number, noun: string): string {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`;
}

function formatCheck(path: string, serviceCount: number, check: CatalogCheck): string {
  const lines = [
    `${path}: valid, ${serviceCount} ${serviceCount === 1 ? 'service' : 'services'}`,
    '',
    'What each rule matches in the stored reports of owned domains (all days):',
  ];
  for (const service of check.services) {
    lines.push(
      `  ${service.name}: ${counted(service.senders, 'sender')}, ` +
        `${counted(service.messages, 'message')}`,
    );
    for (const rule of service.rules) {
      let text = `wins ${counted(rule.senders, 'sender')}, ${counted(rule.messages, 'message')}`;
      if (rule.alone_senders === 0) text += '; matches nothing';
      else if (rule.alone_senders > rule.senders) {
        text +=
          `; alone it matches ${counted(rule.alone_senders, 'sender')}, ` +
          `${counted(rule.alone_messages, 'message')}`;
      }
      lines.push(`    ${rule.rule}: ${text}`);
    }
  }

  lines.push('', 'Known providers outside the catalog:');
  if (check.providers.length === 0) lines.push('  none');
  for (const provider of check.providers) {
    lines.push(
      `  ${provider.rule}: ${counted(provider.senders, 'sender')}, ` +
        `${counted(provider.messages, 'message')}`,
    );
  }
  lines.push(
    '',
    `Unattributed: ${counted(check.unattributed.senders, 'sender')}, ` +
      `${counted(check.unattributed.messages, 'message')}`,
  );
  return `${lines.join('\n')}\n`;
}
