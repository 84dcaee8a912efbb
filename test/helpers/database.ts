import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';

import type { Config } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';

/** The server that CI starts; DATABASE_URL overrides it. */
export const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const isCI = process.env.CI === 'true';

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * True when the real PostgreSQL answers. In CI a missing server is an error, so that a test
 * that needs it fails instead of skipping.
 */
export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch (error) {
    if (isCI)
      throw new Error(
        `PostgreSQL at ${POSTGRES_URL} is required in CI: ${(error as Error).message}`,
      );
    return false;
  }
}

/** Creates an empty database on the real server for one test file; `drop` removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `dmarc_lens_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();

  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export type DatabaseKind = 'postgres' | 'pglite';

export interface TestRuntime extends Runtime {
  dispose(): Promise<void>;
}

/** A runtime over a fresh real PostgreSQL database, or over an in-memory embedded PGlite. */
export async function openTestRuntime(
  kind: DatabaseKind,
  env: Record<string, string> = {},
): Promise<TestRuntime> {
  const database = kind === 'postgres' ? await createTestDatabase() : null;
  const config: Config = loadConfig({
    DATA_DIR: 'memory://',
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...env,
  });
  const runtime = await openRuntime(config, silentLog);
  return {
    ...runtime,
    dispose: async () => {
      await runtime.close();
      await database?.drop();
    },
  };
}
