import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const DEBIAN_POSTGRES_ROOT = '/usr/lib/postgresql';

// PostgreSQL refuses to run as root, so as root the cluster belongs to this user, which the
// Debian postgresql package creates.
const CLUSTER_OWNER = 'postgres';

/**
 * A PostgreSQL cluster of the test's own: its data folder is a temporary folder, it listens
 * on a free port of 127.0.0.1 with trust authentication, and stopping it affects no other test.
 */
export interface PrivatePostgres {
  port: number;
  /** Temporary folder with the data directory, the socket and the server log. */
  root: string;
  /** URL of a database on this cluster, as user postgres. */
  url(database?: string): string;
  /** Stops the server at once, as a crash would (`pg_ctl stop -m immediate`). */
  crash(): Promise<void>;
  /** Starts the server again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server and removes `root`. */
  destroy(): Promise<void>;
  /** The last lines of the server log, for assertion messages. */
  readLog(lines?: number): Promise<string>;
}

/** Raised when the PostgreSQL server binaries are not installed, so a test can skip or fail. */
export class PostgresBinariesMissingError extends Error {
  readonly code = 'postgres-binaries-missing';

  constructor() {
    super(
      `initdb and pg_ctl not found under ${DEBIAN_POSTGRES_ROOT}/*/bin: install them with ` +
        '"apt-get install -y postgresql"',
    );
    this.name = 'PostgresBinariesMissingError';
  }
}

/** The bin folder of the newest installed PostgreSQL major version, or null. */
export function findPostgresBinaries(): string | null {
  if (!existsSync(DEBIAN_POSTGRES_ROOT)) return null;
  const versions = readdirSync(DEBIAN_POSTGRES_ROOT)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(DEBIAN_POSTGRES_ROOT, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

/**
 * Creates a cluster with `initdb` in a new temporary folder and starts it with `pg_ctl`.
 * @throws PostgresBinariesMissingError when initdb or pg_ctl is not installed
 * @throws Error with the server log when the server does not start
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = findPostgresBinaries();
  if (!bin) throw new PostgresBinariesMissingError();

  const root = await mkdtemp(join(tmpdir(), 'dmarc-lens-pg-'));
  const asOwner = userInfo().uid === 0;
  if (asOwner) {
    const { uid, gid } = systemUser(CLUSTER_OWNER);
    await chown(root, uid, gid);
  }
  const exec = (command: string, args: string[]) =>
    asOwner
      ? run('runuser', ['-u', CLUSTER_OWNER, '--', join(bin, command), ...args])
      : run(join(bin, command), args);

  const dataDir = join(root, 'data');
  const logPath = join(root, 'server.log');
  try {
    // --no-sync: the cluster lives only as long as the test, and fsync of a fresh cluster is slow.
    await exec('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw new Error(`initdb in ${dataDir} failed: ${commandOutput(error)}`, { cause: error });
  }

  let port = 0;
  const startServer = async () => {
    const options = [
      `-p ${port}`,
      `-k ${root}`,
      '-c listen_addresses=127.0.0.1',
      '-c max_connections=50',
    ].join(' ');
    try {
      await exec('pg_ctl', [
        'start',
        '-D',
        dataDir,
        '-l',
        logPath,
        '-w',
        '-t',
        '30',
        '-o',
        options,
      ]);
    } catch (error) {
      throw new Error(
        `pg_ctl start on 127.0.0.1:${port} failed: ${commandOutput(error)}\n${await tail(logPath)}`,
        { cause: error },
      );
    }
  };
  const stopServer = (mode: 'fast' | 'immediate') =>
    exec('pg_ctl', ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '30']);

  // A port found free can be taken before the server binds it, so a failed start is retried.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    port = await findFreePort();
    try {
      await startServer();
    } catch (error) {
      lastError = error;
      port = 0;
    }
  }
  if (port === 0) {
    await rm(root, { recursive: true, force: true });
    throw lastError;
  }

  // pg_ctl starts the server detached; a test run that ends without destroy() must not leave it.
  const stopOnExit = () => {
    try {
      const args = ['stop', '-D', dataDir, '-m', 'immediate'];
      if (asOwner)
        execFileSync('runuser', ['-u', CLUSTER_OWNER, '--', join(bin, 'pg_ctl'), ...args]);
      else execFileSync(join(bin, 'pg_ctl'), args);
    } catch {
      // Already stopped.
    }
  };
  process.once('exit', stopOnExit);

  return {
    port,
    root,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    crash: async () => {
      await stopServer('immediate');
    },
    start: startServer,
    destroy: async () => {
      process.off('exit', stopOnExit);
      await stopServer('fast').catch(() => {});
      await rm(root, { recursive: true, force: true });
    },
    readLog: (lines = 40) => tail(logPath, lines),
  };
}

function systemUser(name: string): { uid: number; gid: number } {
  const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
  const fields = line.split(':');
  if (fields.length < 4) {
    throw new Error(`System user "${name}" not found: the postgresql package creates it`);
  }
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function commandOutput(error: unknown): string {
  const failure = error as { stderr?: string; stdout?: string; message?: string };
  return (failure.stderr || failure.stdout || failure.message || String(error)).trim();
}

async function tail(path: string, lines = 40): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '(no server log)');
  return text.split('\n').slice(-lines).join('\n');
}
