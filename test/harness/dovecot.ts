import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  writeFile,
} from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const DOVECOT_BINARY = '/usr/sbin/dovecot';

/** A private Dovecot instance listening on a loopback port, with one mail user. */
export interface DovecotServer {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  /** Temporary folder with the config, the runtime sockets, the log and the maildirs. */
  root: string;
  /** Pid of the Dovecot master process this harness started. */
  pid: number;
  /** Path of the log file that Dovecot writes inside `root`. */
  logPath: string;
  /** Stops the master process by its pid and removes `root`. */
  stop(): Promise<void>;
}

export interface DovecotOptions {
  /**
   * Capabilities announced after login, replacing Dovecot's own list (`imap_capability`), for
   * example to test a client against a server without IDLE or MOVE.
   */
  imapCapability?: string;
}

/** Raised when Dovecot is not installed, so a test can skip outside CI and fail in CI. */
export class DovecotMissingError extends Error {
  readonly code = 'dovecot-missing';

  constructor() {
    super(
      `Dovecot not found at ${DOVECOT_BINARY}: install it with "apt-get install -y dovecot-imapd"`,
    );
    this.name = 'DovecotMissingError';
  }
}

/** Checks whether the Dovecot binary is installed on this machine. */
export function isDovecotInstalled(): boolean {
  return existsSync(DOVECOT_BINARY);
}

const STARTUP_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 5000;

// Dovecot runs mail processes as this system user (created by the Debian package), because it
// refuses to access mail as root and its login processes must not run as root either.
const MAIL_SYSTEM_USER = 'dovecot';
const LOGIN_SYSTEM_USER = 'dovenull';

/**
 * Starts a Dovecot that is separate from any system instance: its config, sockets, state, log
 * and maildirs all live in a new temporary folder, and it listens on a free port of 127.0.0.1.
 *
 * @throws DovecotMissingError when Dovecot is not installed
 * @throws Error with the tail of Dovecot's log when it does not accept connections within 5 s
 */
export async function startDovecot(options: DovecotOptions = {}): Promise<DovecotServer> {
  if (!isDovecotInstalled()) {
    throw new DovecotMissingError();
  }
  if (userInfo().uid !== 0) {
    throw new Error(
      'Dovecot test server needs root: its master switches to the dovecot and dovenull users',
    );
  }

  const { uid, gid } = await lookUpSystemUser(MAIL_SYSTEM_USER);
  const root = await mkdtemp(join(tmpdir(), 'dovecot-'));

  // mkdtemp creates the folder with mode 0700, which the unprivileged mail processes cannot enter.
  await chmod(root, 0o755);
  const mailRoot = join(root, 'mail');
  await mkdir(mailRoot);
  await chown(mailRoot, uid, gid);

  const user = 'reports';
  const password = randomBytes(12).toString('hex');
  const usersPath = join(root, 'users');
  await writeFile(usersPath, `${user}:{PLAIN}${password}::::::\n`, { mode: 0o640 });

  // The auth worker reads the passwd-file as the internal user, not as root.
  await chown(usersPath, 0, gid);

  const logPath = join(root, 'dovecot.log');
  let lastError: unknown;

  // A free port found by binding port 0 can be taken by another process before Dovecot binds it,
  // so a failed start is retried on a new port.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await findFreePort();
    const greeting = `dmarc-lens test IMAP ${randomBytes(6).toString('hex')} ready`;
    const configPath = join(root, 'dovecot.conf');
    await writeFile(
      configPath,
      renderConfig({ root, port, uid, gid, greeting, imapCapability: options.imapCapability }),
    );
    await rm(logPath, { force: true });

    const child = spawn(DOVECOT_BINARY, ['-F', '-c', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));

    try {
      await waitForGreeting(port, greeting, child, STARTUP_TIMEOUT_MS);
    } catch (err) {
      await killAndWait(child);
      const log = await readLogTail(logPath);
      lastError = new Error(
        `Dovecot did not start on 127.0.0.1:${port}: ${(err as Error).message}\n` +
          `output: ${Buffer.concat(output).toString('utf8').trim()}\nlog: ${log}`,
        { cause: err },
      );
      continue;
    }

    const pid = child.pid as number;

    // A test run that ends without calling stop() must not leave this instance running.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);

    return {
      host: '127.0.0.1',
      port,
      user,
      password,
      root,
      pid,
      logPath,
      async stop() {
        process.off('exit', killOnExit);
        await killAndWait(child);
        await rm(root, { recursive: true, force: true });
      },
    };
  }

  await rm(root, { recursive: true, force: true });
  throw lastError;
}

interface ConfigValues {
  root: string;
  port: number;
  uid: number;
  gid: number;
  greeting: string;
  imapCapability?: string;
}

function renderConfig({ root, port, uid, gid, greeting, imapCapability }: ConfigValues): string {
  // Written for Dovecot 2.3 (Debian 12 ships 2.3.19). Plaintext LOGIN without TLS is allowed
  // because the instance only listens on loopback and contains test mail.
  return `protocols = imap
listen = 127.0.0.1
base_dir = ${root}/run
state_dir = ${root}/state
log_path = ${root}/dovecot.log
info_log_path = ${root}/dovecot.log
debug_log_path = ${root}/dovecot.log
instance_name = dovecot-test-${port}
login_greeting = ${greeting}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = ${LOGIN_SYSTEM_USER}
default_internal_user = ${MAIL_SYSTEM_USER}
first_valid_uid = ${uid}
last_valid_uid = ${uid}
first_valid_gid = ${gid}
last_valid_gid = ${gid}
mail_location = maildir:${root}/mail/%u
mail_max_userip_connections = 100
verbose_proctitle = yes
mailbox_idle_check_interval = 1 secs
${imapCapability ? `imap_capability = ${imapCapability}` : ''}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${root}/users
}

userdb {
  driver = static
  args = uid=${uid} gid=${gid} home=${root}/mail/%u
}

# Failed logins in tests would otherwise slow every later login from 127.0.0.1 by up to 15 s.
auth_failure_delay = 0 secs
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
}

async function lookUpSystemUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name) {
      return { uid: Number(fields[2]), gid: Number(fields[3]) };
    }
  }
  throw new Error(
    `System user "${name}" not found in /etc/passwd: the dovecot-core package creates it`,
  );
}

async function findFreePort(): Promise<number> {
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

async function waitForGreeting(
  port: number,
  token: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = `exited with code ${code ?? 'none'} and signal ${signal ?? 'none'}`;
  });

  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`Dovecot ${exited}`);
    }
    if (await receivesGreeting(port, token)) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for the IMAP greeting`);
}

// Another process may have taken the port after findFreePort() released it, so only a greeting
// that contains this instance's own token counts.
function receivesGreeting(port: number, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let received = '';
    const finish = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) {
        finish(received.includes(token));
      }
    });
    socket.once('error', () => finish(false));
    socket.once('end', () => finish(false));
  });
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function readLogTail(logPath: string): Promise<string> {
  try {
    const text = await readFile(logPath, 'utf8');
    return text.split('\n').slice(-20).join('\n').trim() || '(empty)';
  } catch {
    return '(no log file)';
  }
}

/** Reads the last lines of the instance's log, for assertion messages. */
export async function readDovecotLog(server: DovecotServer, lines = 50): Promise<string> {
  const text = await readFile(server.logPath, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

interface ProcessEntry {
  pid: number;
  ppid: number;
  name: string;
}

async function listProcesses(): Promise<ProcessEntry[]> {
  const entries: ProcessEntry[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) {
      continue;
    }
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (!stat) {
      continue;
    }

    // The command name is in parentheses and may itself contain spaces or parentheses.
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' ');
    entries.push({ pid: Number(name), ppid: Number(rest[1]), name: stat.slice(open + 1, close) });
  }
  return entries;
}

/** Lists the pids of the `imap` processes (one per logged-in connection) of this instance. */
export async function findImapPids(server: DovecotServer): Promise<number[]> {
  const processes = await listProcesses();
  return processes.filter((p) => p.ppid === server.pid && p.name === 'imap').map((p) => p.pid);
}

/**
 * Finds the pid of the `imap` process serving the client connection whose local TCP port is
 * `clientPort`. Dovecot passes the accepted socket from imap-login to the imap process, so the
 * imap process that has the socket inode listed in /proc/net/tcp for that port is the one.
 */
export async function findImapPidForClient(
  server: DovecotServer,
  clientPort: number,
): Promise<number | undefined> {
  const inode = await findServerSocketInode(server.port, clientPort);
  if (inode === undefined) {
    return undefined;
  }

  for (const pid of await findImapPids(server)) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target === `socket:[${inode}]`) {
        return pid;
      }
    }
  }
  return undefined;
}

async function findServerSocketInode(
  serverPort: number,
  clientPort: number,
): Promise<string | undefined> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const localSuffix = `:${serverPort.toString(16).toUpperCase().padStart(4, '0')}`;
  const remoteSuffix = `:${clientPort.toString(16).toUpperCase().padStart(4, '0')}`;

  // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns.length < 10) {
      continue;
    }
    if (columns[1].endsWith(localSuffix) && columns[2].endsWith(remoteSuffix)) {
      return columns[9];
    }
  }
  return undefined;
}
