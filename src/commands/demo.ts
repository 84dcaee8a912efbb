import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { ConfigError, loadConfig } from '../config.js';
import { renderReportXml } from '../demo/report-xml.js';
import { generateSampleReports } from '../demo/sample-reports.js';
import { ingestInput } from '../ingest/pipeline.js';
import { createLogger } from '../log.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { rollUpAllReports } from '../store/rollups.js';
import { runServe, type ServeOptions } from './serve.js';

const SAMPLES_DIR = fileURLToPath(new URL('../../samples/', import.meta.url));
export const DEMO_DOMAINS = 'example.com,example.org,example.net';

function checkPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: Error) =>
      reject(new Error(`Cannot listen on ${host}:${port} (${error.message}); try --port 8081`)),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** Loads the generated sample reports, plus two inputs that show quarantine and foreign reports. */
export async function loadDemoData(runtime: Runtime): Promise<number> {
  const reports = generateSampleReports();
  for (const [index, report] of reports.entries()) {
    const xml = Buffer.from(renderReportXml(report));
    const name = `${report.metadata.orgName}!${report.policy.domain}!${report.metadata.reportId}.xml`;
    // Half gzipped, as receivers send them.
    const bytes = index % 2 === 0 ? gzipSync(xml) : xml;
    await ingestInput(runtime.ingest, {
      bytes,
      name: index % 2 === 0 ? `${name}.gz` : name,
      source: 'demo',
      origin: { sample: index },
    });
  }

  for (const file of ['truncated-sample.xml', 'foreign-sample.xml']) {
    const bytes = fs.readFileSync(path.join(SAMPLES_DIR, file));
    await ingestInput(runtime.ingest, {
      bytes,
      name: file,
      source: 'demo',
      origin: { sample: file },
    });
  }

  await rollUpAllReports(runtime.db.pool, runtime.log);
  return reports.length;
}

/**
 * `dmarc-lens demo`: a temporary embedded database with a few weeks of sample reports, and
 * the dashboard open without login. The folder is removed on exit.
 */
export async function runDemo(options: { port?: string } = {}, serveOptions: ServeOptions = {}) {
  if (options.port !== undefined && !/^\d{1,5}$/.test(options.port)) {
    process.stderr.write(
      `dmarc-lens: Invalid --port ${JSON.stringify(options.port)}: expected 0 to 65535\n`,
    );
    process.exit(2);
  }

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-lens-demo-'));
  let config;
  try {
    config = loadConfig({
      ...process.env,
      DATABASE_URL: '',
      DATA_DIR: dataDir,
      DOMAINS: DEMO_DOMAINS,
      SERVICES_FILE: path.join(SAMPLES_DIR, 'services.yaml'),
      PORT: options.port ?? process.env.PORT ?? '8080',
      IMAP_HOST: '',
      WATCH_DIR: '',
    });
  } catch (error) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (error instanceof ConfigError) {
      process.stderr.write(`dmarc-lens: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  // Find a taken port before spending time on the sample data.
  try {
    await checkPortFree(config.host, config.port);
  } catch (error) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }

  // The samples include a deliberately broken input for the Quarantine view; its warning
  // would only alarm, so the demo logs errors alone unless LOG_LEVEL says otherwise.
  const log = createLogger(process.env.LOG_LEVEL ?? 'error');
  const runtime = await openRuntime(config, log);
  try {
    const count = await loadDemoData(runtime);
    process.stdout.write(`Loaded ${count} sample reports into a temporary database.\n`);
    await runServe(runtime, { ...serveOptions, demo: true });
  } finally {
    await runtime.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
