import type { Server } from 'node:http';
import { Router } from 'express';

import { AnalysisService, startAnalysisWorkers } from '../analyze/service.js';
import { DirectoryWatcher } from '../ingest/watch-dir.js';
import { ImapPoller } from '../ingest/imap-poller.js';
import { PendingInputWorker } from '../ingest/pending-worker.js';
import { createAlerting } from '../notify/alerting.js';
import { AlertScheduler } from '../notify/scheduler.js';
import type { Runtime } from '../runtime.js';
import { alertsRouter } from '../serve/api/alerts-router.js';
import { analysisRouter } from '../serve/api/analysis-router.js';
import { createApp } from '../serve/app.js';
import { applyRetention } from '../store/maintenance.js';
import { ensureRecordPartitions } from '../store/partitions.js';
import { RollupWorker } from '../store/rollup-worker.js';
import { saveMailboxConnection } from '../store/alerts.js';
import { imapPollerSetup } from './poll.js';

export interface ServeOptions {
  /** Demo mode: the dashboard opens without login and shows a banner about it. */
  demo?: boolean;
  /** Extra routes mounted behind login, such as attribution and recommendations. */
  analysis?: unknown;
}

/** A part of `serve` that runs until stopped. */
interface Component {
  name: string;
  stop(): Promise<void>;
}

/**
 * `dmarc-lens serve`: the HTTP server, the IMAP poller when IMAP_HOST is set, the folder
 * watcher when WATCH_DIR is set, and the workers that finish pending inputs and roll up
 * reports. SIGTERM or SIGINT stops intake first, lets the input in hand finish, then exits.
 */
export async function runServe(runtime: Runtime, options: ServeOptions = {}): Promise<number> {
  const { config, log } = runtime;
  const components: Component[] = [];

  // An invalid SERVICES_FILE stops start-up here, before any component runs.
  const analysis = new AnalysisService({ pool: runtime.db.pool, log, config });
  await analysis.syncCatalogFile();

  const maintenance = startMaintenance(runtime);
  components.push({ name: 'maintenance', stop: async () => clearInterval(maintenance) });

  const rollups = new RollupWorker(runtime.db.pool, log);
  rollups.start();
  components.push({ name: 'rollups', stop: () => rollups.stop() });

  const analysisWorkers = startAnalysisWorkers(analysis, rollups, config);
  components.push({ name: 'analysis', stop: () => analysisWorkers.stop() });

  // An invalid ALERT_RULES_FILE stops start-up here. Each evaluation attributes what the last
  // ingest batch stored first, so that the rules see it.
  const alerting = createAlerting({
    pool: runtime.db.pool,
    log,
    config,
    refresh: () => analysis.refresh(),
  });
  const alerts = new AlertScheduler(alerting, log);
  const previousRollupHook = rollups.onRolledUp;
  rollups.onRolledUp = (reports) => {
    previousRollupHook(reports);
    alerts.wake();
  };
  alerts.start();
  components.push({ name: 'alerts', stop: () => alerts.stop() });

  const pending = new PendingInputWorker(runtime.ingest, 30, () => rollups.wake());
  pending.start();
  components.push({ name: 'pending inputs', stop: () => pending.stop() });

  if (config.watchDir) {
    const watcher = new DirectoryWatcher(runtime.ingest, { directory: config.watchDir });
    watcher.onIngested = () => rollups.wake();
    watcher.start();
    components.push({ name: 'watch folder', stop: () => watcher.stop() });
  }

  if (config.imap) {
    const { config: imapConfig, deps } = imapPollerSetup(runtime);
    const ingest = deps.ingest;
    const mailbox = `${imapConfig.user}@${imapConfig.host}/${imapConfig.mailbox ?? 'INBOX'}`;
    const poller = new ImapPoller(imapConfig, {
      ...deps,
      ingest: async (input) => {
        const outcome = await ingest(input);
        rollups.wake();
        return outcome;
      },
      // Several instances on one database take turns draining the mailbox. The embedded
      // database serves one process only, so it needs no lock.
      drainLock: runtime.db.embedded ? undefined : () => takeDrainLock(runtime, mailbox),
      // Kept in the database for the alert on a mailbox that stays unreachable.
      onConnection: (state) => {
        const outcome = state.connected
          ? ({ connected: true } as const)
          : ({ connected: false, error: state.error.message } as const);
        saveMailboxConnection(runtime.db.pool, mailbox, outcome, new Date()).catch((err: unknown) =>
          log.warn({ err, mailbox }, 'Saving the IMAP connection state failed'),
        );
      },
    });
    poller.start();
    components.push({ name: 'imap poller', stop: () => poller.stop() });
  }

  const app = createApp({
    pool: runtime.db.pool,
    config,
    log,
    ingest: runtime.ingest,
    demo: options.demo ?? false,
    analysis: options.analysis ?? {
      router: Router().use(alertsRouter(alerting.env), analysisRouter(analysis)),
    },
  });
  const server = await listen(app, config.host, config.port);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ host: config.host, port, publicUrl: config.publicUrl }, 'dmarc-lens is serving');
  if (options.demo) {
    process.stdout.write(`Demo dashboard: http://${displayHost(config.host)}:${port}/\n`);
  }

  await waitForShutdownSignal();
  log.info('Shutting down: finishing the input in hand');

  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  // Intake first, then the workers that finish what intake stored.
  for (const component of components.reverse()) {
    await component
      .stop()
      .catch((err: unknown) => log.error({ err, component: component.name }, 'Stop failed'));
  }
  log.info('Stopped');
  return 0;
}

/**
 * Takes a PostgreSQL session advisory lock named after the mailbox on a connection of its own,
 * or returns null when another instance holds it.
 */
async function takeDrainLock(
  runtime: Runtime,
  mailbox: string,
): Promise<(() => Promise<void>) | null> {
  const client = await runtime.db.pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(hashtext('dmarc-lens imap ' || $1)) AS locked`,
      [mailbox],
    );
    if (!rows[0].locked) {
      client.release();
      return null;
    }
  } catch (error) {
    client.release();
    throw error;
  }
  return async () => {
    try {
      await client.query(`SELECT pg_advisory_unlock(hashtext('dmarc-lens imap ' || $1))`, [
        mailbox,
      ]);
    } finally {
      client.release();
    }
  };
}

// Partitions are created a year ahead, so a few runs a day keep them current with margin.
const MAINTENANCE_INTERVAL_MS = 6 * 3600 * 1000;

/** Creates upcoming monthly partitions and applies RETENTION_MONTHS, now and every 6 hours. */
function startMaintenance(runtime: Runtime): NodeJS.Timeout {
  const { pool } = runtime.db;
  const log = runtime.log.child({ component: 'maintenance' });
  const run = async () => {
    try {
      await ensureRecordPartitions(pool, log);
      await applyRetention(pool, runtime.config.retentionMonths, log);
    } catch (err) {
      log.error({ err }, 'Maintenance failed; it runs again in 6 hours');
    }
  };
  void run();
  const timer = setInterval(() => void run(), MAINTENANCE_INTERVAL_MS);
  timer.unref();
  return timer;
}

function listen(app: ReturnType<typeof createApp>, host: string, port: number): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const server = app.listen(port, host);
    // Longer than the 60 s idle timeout of common proxies and clients, so that a client never
    // sends a request on a connection the server is closing at that moment.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  }).catch((error: Error) => {
    throw new Error(`Cannot listen on HOST=${host} PORT=${port}: ${error.message}`, {
      cause: error,
    });
  });
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

function waitForShutdownSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
