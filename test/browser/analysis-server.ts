import type { AddressInfo } from 'node:net';

import { AnalysisService, startAnalysisWorkers } from '../../src/analyze/service.js';
import { analysisRouter } from '../../src/serve/api/analysis-router.js';
import { createApp } from '../../src/serve/app.js';
import { openTestRuntime, silentLog, type TestRuntime } from '../helpers/database.js';
import { ADMIN_PASSWORD } from '../serve/harness.js';

export interface AnalysisTestServer<T> {
  baseUrl: string;
  runtime: TestRuntime;
  /** What `load` returned. */
  loaded: T;
  close(): Promise<void>;
}

/**
 * Starts the app with the analysis API over a fresh PostgreSQL database, as `serve` wires it.
 * `load` stores reports first. Then the catalog file is loaded and stored reports are
 * attributed, and the attribution worker runs, so that catalog changes made by a test are
 * attributed too. Reverse DNS stays off, so that no lookup leaves the machine.
 */
export async function startAnalysisServer<T>(
  options: {
    env?: Record<string, string>;
    demo?: boolean;
    load?: (runtime: TestRuntime) => Promise<T>;
  } = {},
): Promise<AnalysisTestServer<T>> {
  const runtime = await openTestRuntime('postgres', {
    DOMAINS: 'example.com',
    ADMIN_PASSWORD,
    ...options.env,
    REVERSE_DNS: 'off',
  });
  const loaded = (await options.load?.(runtime)) as T;

  const analysis = new AnalysisService({
    pool: runtime.db.pool,
    log: silentLog,
    config: runtime.config,
  });
  await analysis.syncCatalogFile();
  await analysis.refresh();
  const workers = startAnalysisWorkers(analysis, { onRolledUp: () => {} }, runtime.config);

  const app = createApp({
    pool: runtime.db.pool,
    config: runtime.config,
    log: silentLog,
    ingest: runtime.ingest,
    demo: options.demo ?? false,
    analysis: { router: analysisRouter(analysis) },
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    runtime,
    loaded,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await workers.stop();
      await runtime.dispose();
    },
  };
}
