import type { Logger } from 'pino';

import type { Config } from './config.js';
import type { IngestContext } from './ingest/pipeline.js';
import { openDatabase, type Database } from './store/db.js';
import { migrate } from './store/migrate.js';
import { applyOwnedDomains } from './store/maintenance.js';
import { ensureRecordPartitions } from './store/partitions.js';

export interface Runtime {
  config: Config;
  log: Logger;
  db: Database;
  ingest: IngestContext;
  close(): Promise<void>;
}

/** Opens the database, applies migrations and prepares partitions: what every command needs. */
export async function openRuntime(config: Config, log: Logger): Promise<Runtime> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
  try {
    await migrate(db.pool, log);
    await ensureRecordPartitions(db.pool, log);
    await applyOwnedDomains(db.pool, config.ownedDomains, log);
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  return {
    config,
    log,
    db,
    ingest: {
      pool: db.pool,
      log,
      limits: config.limits,
      ownedDomains: config.ownedDomains,
      useCopy: !db.embedded,
    },
    close: () => db.close(),
  };
}
