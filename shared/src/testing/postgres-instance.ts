/**
 * A private, disposable PostgreSQL server for tests that need an authentication method the
 * machine's server does not use (SCRAM-SHA-256, MD5, cleartext): initdb in a fresh temp dir,
 * `host all all 127.0.0.1/32 <auth>` in pg_hba.conf, a free TCP port on 127.0.0.1, the role's
 * password set over the unix socket. As root, initdb and postgres run as the `postgres` OS user
 * (initdb refuses root). Every wait is bounded; failures carry the tail of the server log.
 *
 *   await using pg = await startPostgresInstance({ auth: 'scram-sha-256' });
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type PostgresInstanceAuth = 'scram-sha-256' | 'md5' | 'password';

export interface PostgresInstanceOptions {
  readonly auth: PostgresInstanceAuth;
  /** The role's password; random by default. */
  readonly password?: string;
  /** The role (created by initdb as the superuser). Default `postgres`. */
  readonly user?: string;
  /** Directory with initdb/postgres/psql; default the highest /usr/lib/postgresql/<v>/bin. */
  readonly binDir?: string;
  /**
   * Also accept TLS with a fresh self-signed certificate for 127.0.0.1 / localhost (needs the
   * `openssl` command). Default false.
   */
  readonly ssl?: boolean;
  /** Bound for initdb, start and stop each. Default 60 s. */
  readonly timeoutMs?: number;
}

export interface PostgresInstance {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The self-signed certificate (PEM) when started with `ssl: true`. */
  readonly sslCertificate: string | undefined;
  /** The server's data directory (inside a temp dir removed by stop()). */
  readonly dataDir: string;
  /** The last lines the server logged. */
  logTail(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const POSTGRES_ROOT = '/usr/lib/postgresql';
const LOG_TAIL_BYTES = 8 * 1024;

/** The bin dir of the highest installed major version. */
export async function findPostgresBinDir(root = POSTGRES_ROOT): Promise<string> {
  let versions: string[];
  try {
    versions = await readdir(root);
  } catch {
    throw new Error(`postgres-instance: no PostgreSQL installation under ${root}`);
  }
  const sorted = versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const version of sorted) {
    const bin = join(root, version, 'bin');
    const entries = await readdir(bin).catch(() => [] as string[]);
    if (entries.includes('initdb') && entries.includes('postgres')) return bin;
  }
  throw new Error(`postgres-instance: no initdb under ${root}/*/bin`);
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('postgres-instance: could not find a free port'));
      });
    });
  });
}

function run(
  file: string,
  args: readonly string[],
  options: { timeoutMs: number; input?: string },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
    // A command that does not read its input closes the pipe early: that is not an error.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

/** Runs a command as the postgres OS user when we are root (initdb and postgres refuse root). */
function asPostgres(file: string, args: readonly string[]): [string, string[]] {
  if (process.getuid?.() === 0) return ['runuser', ['-u', 'postgres', '--', file, ...args]];
  return [file, [...args]];
}

async function postgresOwner(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    run('id', ['-u', 'postgres'], { timeoutMs: 5_000 }),
    run('id', ['-g', 'postgres'], { timeoutMs: 5_000 }),
  ]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function chownTree(dir: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(dir, owner.uid, owner.gid);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const parent = (entry as { parentPath?: string; path?: string }).parentPath ?? entry.path;
    await chown(join(parent, entry.name), owner.uid, owner.gid);
  }
}

const sqlLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`;
const sqlIdentifier = (value: string): string => `"${value.replaceAll('"', '""')}"`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A running postgres child (possibly under runuser) and how to stop it. */
class Server {
  readonly child: ChildProcess;
  private readonly root: string;
  private readonly dataDir: string;
  exited = false;
  private readonly onProcessExit = (): void => {
    this.kill('SIGKILL');
    try {
      rmSync(this.root, { recursive: true, force: true });
    } catch {
      // best effort while the process exits
    }
  };

  constructor(child: ChildProcess, root: string) {
    this.child = child;
    this.root = root;
    this.dataDir = join(root, 'data');
    child.once('exit', () => {
      this.exited = true;
      process.off('exit', this.onProcessExit);
    });
    // If the test process dies first, do not leave a server behind.
    process.once('exit', this.onProcessExit);
  }

  /** The postmaster's pid (under runuser it is not our child), else the child's. */
  private postmasterPid(): number | undefined {
    try {
      const pid = Number.parseInt(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8'), 10);
      if (Number.isSafeInteger(pid) && pid > 0) return pid;
    } catch {
      // not written yet, or already removed
    }
    return this.child.pid;
  }

  private kill(signal: NodeJS.Signals): void {
    if (this.exited) return;
    for (const pid of new Set([this.postmasterPid(), this.child.pid])) {
      if (pid === undefined) continue;
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
      if (signal === 'SIGINT') break; // the postmaster's fast shutdown ends runuser too
    }
  }

  /** Fast shutdown (SIGINT to the postmaster); SIGKILL if it is not gone within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.kill('SIGINT');
    const deadline = Date.now() + timeoutMs;
    while (!this.exited && Date.now() < deadline) await sleep(50);
    if (this.exited) return;
    this.kill('SIGKILL');
    const killDeadline = Date.now() + 5_000;
    while (!this.exited && Date.now() < killDeadline) await sleep(50);
  }
}

export async function startPostgresInstance(
  options: PostgresInstanceOptions,
): Promise<PostgresInstance> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const user = options.user ?? 'postgres';
  const password = options.password ?? randomBytes(12).toString('base64url');
  const bin = options.binDir ?? (await findPostgresBinDir());
  const root = await mkdtemp(join(tmpdir(), 'hoop-pg-'));
  const dataDir = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  let log = '';
  const appendLog = (chunk: Buffer | string): void => {
    log = (log + chunk.toString()).slice(-LOG_TAIL_BYTES);
  };
  const logTail = (): string => log;
  let current: Server | undefined;

  const fail = async (message: string, cause?: unknown): Promise<never> => {
    await current?.stop(5_000);
    await rm(root, { recursive: true, force: true }).catch(() => {});
    const reason = cause instanceof Error ? `: ${cause.message}` : '';
    throw new Error(`postgres-instance: ${message}${reason}\n--- server log tail ---\n${log}`);
  };

  const sslArgs: string[] = [];
  let sslCertificate: string | undefined;
  try {
    if (options.ssl === true) {
      const cert = join(root, 'server.crt');
      const key = join(root, 'server.key');
      await run(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
          .concat(['-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'])
          .concat(['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']),
        { timeoutMs },
      );
      await chmod(key, 0o600);
      sslCertificate = await readFile(cert, 'utf8');
      sslArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${cert}`, '-c', `ssl_key_file=${key}`);
    }
    if (asRoot) await chownTree(root, await postgresOwner());
    const [initdb, initArgs] = asPostgres(join(bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      user,
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    const init = await run(initdb, initArgs, { timeoutMs });
    appendLog(init.stdout + init.stderr);
    // Writing an existing file keeps its owner (the postgres user when we are root).
    await writeFile(
      join(dataDir, 'pg_hba.conf'),
      `local all all trust\nhost all all 127.0.0.1/32 ${options.auth}\n`,
    );
  } catch (err) {
    return fail('could not create the data directory', err);
  }

  const psql = (port: number, sql: string): Promise<{ stdout: string; stderr: string }> =>
    run(
      join(bin, 'psql'),
      ['-X', '-h', root, '-p', String(port), '-U', user, '-d', 'postgres'].concat([
        '-v',
        'ON_ERROR_STOP=1',
        '-At',
        '-f',
        '-',
      ]),
      { timeoutMs: 10_000, input: sql },
    );

  /** Starts postgres on `port` and waits until a query over the unix socket succeeds. */
  const launch = async (port: number): Promise<Server> => {
    const [postgres, args] = asPostgres(join(bin, 'postgres'), [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-k',
      root,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      `password_encryption=${options.auth === 'md5' ? 'md5' : 'scram-sha-256'}`,
      '-c',
      'logging_collector=off',
      ...sslArgs,
    ]);
    const server = new Server(spawn(postgres, args, { stdio: ['ignore', 'pipe', 'pipe'] }), root);
    current = server;
    server.child.stdout?.on('data', appendLog);
    server.child.stderr?.on('data', appendLog);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (server.exited) throw new Error('postgres exited during start');
      const ready = await psql(port, 'select 1').then(
        () => true,
        () => false,
      );
      if (ready) return server;
      if (Date.now() > deadline) throw new Error(`postgres not ready within ${timeoutMs} ms`);
      await sleep(100);
    }
  };

  let port = 0;
  let server: Server | undefined;
  for (let attempt = 1; server === undefined; attempt++) {
    port = await freePort();
    try {
      server = await launch(port);
    } catch (err) {
      // Another process may have taken the port between freePort() and bind: try another.
      if (attempt < 3 && /could not bind|already in use/i.test(log)) {
        await current?.stop(5_000);
        continue;
      }
      return fail('could not start postgres', err);
    }
  }
  const running = server;
  try {
    await psql(
      port,
      `ALTER ROLE ${sqlIdentifier(user)} WITH LOGIN PASSWORD ${sqlLiteral(password)};`,
    );
  } catch (err) {
    return fail('could not set the role password', err);
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= running.stop(timeoutMs).finally(() => rm(root, { recursive: true, force: true }));
    return stopping;
  };

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    database: 'postgres',
    sslCertificate,
    dataDir,
    logTail,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
