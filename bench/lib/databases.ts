import { randomBytes } from 'node:crypto';
import { finished } from 'node:stream/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import pino from 'pino';

import { loadConfig } from '../../src/config.js';
import type { IngestContext } from '../../src/ingest/pipeline.js';
import { DEFAULT_LIMITS } from '../../src/parse/limits.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { migrate } from '../../src/store/migrate.js';
import { ensureRecordPartitions } from '../../src/store/partitions.js';

export const silentLog = pino({ level: 'silent' });

/** A database created for one benchmark section and dropped after it. */
export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database on the server of `serverUrl`. */
export async function createDatabase(serverUrl: string, label: string): Promise<BenchDatabase> {
  const name = `dmarc_lens_bench_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }

  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Opens the product's runtime (migrated schema, partitions, pool of 4) on a fresh database. */
export async function openPostgresRuntime(
  serverUrl: string,
  label: string,
): Promise<{ runtime: Runtime; database: BenchDatabase; dispose(): Promise<void> }> {
  const database = await createDatabase(serverUrl, label);
  const config = loadConfig({ DATABASE_URL: database.url, DATA_DIR: 'memory://' });
  const runtime = await openRuntime(config, silentLog);
  return {
    runtime,
    database,
    dispose: async () => {
      await runtime.close();
      await database.drop();
    },
  };
}

/**
 * An in-memory PGlite served over its socket as the product serves it, with the PGlite handle
 * kept so that the COPY ceiling can use PGlite's own COPY, which its socket does not carry.
 */
export interface EmbeddedDatabase {
  pglite: PGlite;
  pool: pg.Pool;
  ingest: IngestContext;
  close(): Promise<void>;
}

export async function openEmbeddedDatabase(): Promise<EmbeddedDatabase> {
  const pglite = await PGlite.create('memory://');
  const server = new PGLiteSocketServer({
    db: pglite,
    port: 0,
    host: '127.0.0.1',
    maxConnections: 5,
  });
  await server.start();
  const pool = new pg.Pool({
    connectionString: `postgres://postgres@${server.getServerConn()}/postgres`,
    max: 4,
  });
  await migrate(pool, silentLog);
  await ensureRecordPartitions(pool, silentLog);
  return {
    pglite,
    pool,
    ingest: { pool, log: silentLog, limits: DEFAULT_LIMITS, ownedDomains: [], useCopy: false },
    close: async () => {
      await pool.end();
      await server.stop();
      await pglite.close();
    },
  };
}

/** Lists the columns of `records` that COPY can write: all but the generated id. */
export async function recordColumns(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'records' AND column_name <> 'id'
      ORDER BY ordinal_position`,
  );
  return rows.map((row) => row.column_name);
}

/** Reads every row of `records` in COPY text format. */
export async function dumpRecords(pool: pg.Pool, columns: string[]): Promise<Buffer> {
  const client = await pool.connect();
  try {
    const chunks: Buffer[] = [];
    // COPY TO reads a partitioned table only through a query.
    const stream = client.query(
      copyTo(`COPY (SELECT ${columns.join(', ')} FROM records) TO STDOUT`),
    );
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    await finished(stream);
    return Buffer.concat(chunks);
  } finally {
    client.release();
  }
}

/** Writes rows in COPY text format into `records` with one COPY, in 1 MiB writes. */
export async function copyRecords(pool: pg.Pool, columns: string[], rows: Buffer): Promise<void> {
  const client = await pool.connect();
  try {
    const stream = client.query(copyFrom(`COPY records (${columns.join(', ')}) FROM STDIN`));
    for (let offset = 0; offset < rows.length; offset += 1024 * 1024) {
      if (!stream.write(rows.subarray(offset, offset + 1024 * 1024))) {
        await new Promise((resolve) => stream.once('drain', resolve));
      }
    }
    stream.end();
    await finished(stream);
  } finally {
    client.release();
  }
}
