import { Argument, Command, Option } from 'commander';

import { ConfigError, loadConfig, loadDotEnv, type Config } from './config.js';
import { createLogger } from './log.js';
import { openRuntime, type Runtime } from './runtime.js';
import { runExport } from './commands/export.js';
import { runImport } from './commands/import.js';
import { runPollOnce } from './commands/poll.js';
import { runReprocess } from './commands/reprocess.js';
import { runDemo } from './commands/demo.js';
import { runServe } from './commands/serve.js';
import { runServicesCheck } from './commands/services.js';
import { runRecommend } from './commands/recommend.js';
import { runWhatIf } from './commands/whatif.js';
import { runAlerts, runAlertsTest } from './commands/alerts.js';

/** Loads the configuration and opens the database around one command. */
async function withRuntime(
  action: (runtime: Runtime) => Promise<number | void>,
  quiet = true,
): Promise<void> {
  let config: Config;
  try {
    loadDotEnv();
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`dmarc-lens: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  // Commands other than serve report through their own output; their logs only carry errors
  // unless LOG_LEVEL asks for more.
  const level = process.env.LOG_LEVEL ?? (quiet ? 'error' : config.logLevel);
  const log = createLogger(level);
  const runtime = await openRuntime(config, log);
  let exitCode: number | void = 0;
  try {
    exitCode = await action(runtime);
  } finally {
    await runtime.close();
  }
  process.exitCode = exitCode ?? 0;
}

function parseDateOption(value: string): Date {
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(date.getTime())) {
    throw new Error(
      `Invalid date ${JSON.stringify(value)}: expected YYYY-MM-DD or an ISO 8601 time`,
    );
  }
  return date;
}

// A closed pipe (`export … | head`) ends the output; it is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command()
  .name('dmarc-lens')
  .description('Ingest DMARC aggregate reports, attribute failing mail and recommend policy')
  .showHelpAfterError();

program
  .command('serve')
  .description('run migrations, the IMAP poller, the folder watcher, the HTTP server and alerts')
  .action(() => withRuntime((runtime) => runServe(runtime), false));

program
  .command('demo')
  .description('serve the dashboard on sample reports in a temporary embedded database')
  .option('--port <port>', 'HTTP port (default 8080; 0 picks a free one)')
  .action((options: { port?: string }) => runDemo(options));

program
  .command('import')
  .description(
    'ingest report files or folders (xml, gz, zip, eml, mbox); exit 1 if any was rejected',
  )
  .argument('<paths...>', 'files or folders, read recursively')
  .action((paths: string[]) => withRuntime((runtime) => runImport(runtime, paths)));

program
  .command('poll')
  .description('drain the configured IMAP mailbox')
  .requiredOption('--once', 'drain once and exit (the serve command polls continuously)')
  .action(() => withRuntime((runtime) => runPollOnce(runtime)));

program
  .command('export')
  .description('write reports or records to stdout')
  .addArgument(new Argument('<kind>', 'what to export').choices(['reports', 'records']))
  .option('--from <date>', 'first day, inclusive (YYYY-MM-DD, UTC)', parseDateOption)
  .option('--to <date>', 'last day, inclusive (YYYY-MM-DD, UTC)', parseDateOption)
  .option('--domain <domain>', 'only this domain and its subdomains')
  .option('--include-foreign', 'also export reports about domains outside DOMAINS')
  .addOption(
    new Option('--format <format>', 'output format').choices(['csv', 'json']).default('csv'),
  )
  .action((kind: 'reports' | 'records', options) =>
    withRuntime((runtime) => runExport(runtime, kind, options)),
  );

program
  .command('reprocess')
  .description('read quarantined and partly read inputs again and report what changed')
  .action(() => withRuntime((runtime) => runReprocess(runtime)));

program
  .command('services')
  .description('work with the service catalog')
  .command('check')
  .description('validate a catalog file and say what each rule matches in stored reports')
  .argument('[file]', 'catalog file (default SERVICES_FILE)')
  .addOption(
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
  )
  .action((file: string | undefined, options) =>
    withRuntime((runtime) => runServicesCheck(runtime, file, options)),
  );

program
  .command('recommend')
  .description('print the next DMARC steps per domain and service, with evidence and DNS records')
  .option('--domain <domain>', 'only this domain and its subdomains')
  .option('--from <date>', 'first day, inclusive (default: 30 days before --to)', parseDateOption)
  .option(
    '--to <date>',
    'last day, inclusive (default: the last day with reports)',
    parseDateOption,
  )
  .addOption(
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
  )
  .action((options) => withRuntime((runtime) => runRecommend(runtime, options)));

program
  .command('whatif')
  .description('replay stored reports under a candidate policy: what it would quarantine or reject')
  .requiredOption('--domain <domain>', 'the domain the policy would be published on')
  .requiredOption('--policy <record>', 'the candidate DMARC record, e.g. "v=DMARC1; p=reject"')
  .option('--from <date>', 'first day, inclusive (default: 30 days before --to)', parseDateOption)
  .option(
    '--to <date>',
    'last day, inclusive (default: the last day with reports)',
    parseDateOption,
  )
  .addOption(
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
  )
  .action((options) => withRuntime((runtime) => runWhatIf(runtime, options)));

program
  .command('alerts')
  .description('evaluate the alert rules and send alert e-mails through SMTP_URL')
  .addCommand(
    new Command('run')
      .description('evaluate the alert rules now, queue due digests and send; exit 1 on failures')
      .option('--dry-run', 'print what would be sent; send nothing and leave alert state unchanged')
      .addOption(
        new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
      )
      .action((options) => withRuntime((runtime) => runAlerts(runtime, options))),
  )
  .addCommand(
    new Command('test')
      .description('send a sample alert to check the SMTP settings; exit 1 if it fails')
      .option('--to <addresses>', 'comma-separated recipients (default ALERT_TO)', (value) =>
        value
          .split(',')
          .map((address) => address.trim())
          .filter((address) => address !== ''),
      )
      .action((options) => withRuntime((runtime) => runAlertsTest(runtime, options))),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`dmarc-lens: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
