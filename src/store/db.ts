import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';

import { maskUrlPassword } from '../config.js';

// Return int8 (counts, sums) as JavaScript numbers: message counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

export interface Database {
  pool: pg.Pool;
  /** True when the data lives in the embedded PGlite under DATA_DIR. */
  embedded: boolean;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  poolSize?: number;
  log: Logger;
}

/**
 * Opens the configured PostgreSQL, or with no DATABASE_URL an embedded PGlite under DATA_DIR
 * served over a loopback socket, so that both run the same `pg` code.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const poolSize = options.poolSize ?? 4;
  if (options.databaseUrl) {
    let pool: pg.Pool;
    try {
      pool = createPool(options.databaseUrl, poolSize, options.log);
      await pool.query('SELECT 1');
    } catch (error) {
      const where = maskUrlPassword(options.databaseUrl);
      throw new Error(`Cannot connect to DATABASE_URL=${where}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return { pool, embedded: false, close: () => pool.end() };
  }
  // NOTE: one connection on the embedded database. PGlite runs one session, and the socket
  // server's multiplexer can interleave two clients' Parse/Bind/Execute messages outside a
  // transaction ("unnamed prepared statement does not exist" under load), so dmarc-lens never
  // opens a second one. Queries then wait for each other, which is fine at embedded scale.
  return openEmbedded(options.dataDir, 1, options.log);
}

function createPool(connectionString: string, max: number, log: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its connection (database restart) emits here; without a
  // listener the process would crash. The pool replaces the client on the next query.
  pool.on('error', (err) => log.warn({ err }, 'Idle database connection failed'));
  // A checked-out client emits 'error' as well when its connection is lost (pg 8 emits it even
  // after failing the query in flight), and pg-pool listens only while the client is idle. The
  // client's queries fail either way, so this listener only keeps the process alive.
  pool.on('connect', (client) =>
    client.on('error', (err) => log.warn({ err }, 'Database connection lost')),
  );
  return pool;
}

async function openEmbedded(dataDir: string, poolSize: number, log: Logger): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');

  const directory = dataDir.startsWith('memory://') ? dataDir : path.resolve(dataDir, 'pgdata');
  // A first start initialises the database files, which takes a while on a slow disk.
  log.info({ dataDir: directory }, 'Opening the embedded PostgreSQL (PGlite)');
  let db: Awaited<ReturnType<typeof PGlite.create>>;
  try {
    if (!directory.startsWith('memory://')) await fs.mkdir(directory, { recursive: true });
    db = await PGlite.create(directory);
  } catch (error) {
    throw new Error(
      `Cannot open the embedded database under DATA_DIR=${dataDir}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  const server = new PGLiteSocketServer({
    db,
    port: 0,
    host: '127.0.0.1',
    maxConnections: poolSize + 1,
  });
  await server.start();
  const connection = server.getServerConn();
  log.info({ dataDir: directory }, 'Embedded PostgreSQL (PGlite) started');

  // PGlite accepts any user name; it has one database, postgres.
  const pool = createPool(`postgres://postgres@${connection}/postgres`, poolSize, log);
  return {
    pool,
    embedded: true,
    close: async () => {
      await pool.end();
      await server.stop();
      await db.close();
    },
  };
}
