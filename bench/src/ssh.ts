/**
 * The `ssh -L` path: pgbench ──► ssh -L 127.0.0.1:LOCAL ══ssh══► sshd (127.0.0.1:PORT) ──► PostgreSQL.
 *
 * Our own sshd on a free port with a throw-away host key, accepting one throw-away client key for
 * the bench's user, and an ssh client forwarding a local port to PostgreSQL. Nothing in ~/.ssh
 * or /etc/ssh is read or written (`-F /dev/null`, `-f CONFIG`, known hosts to /dev/null).
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { BenchError, BenchErrorCode } from './errors.js';
import { answers, type PgServer } from './postgres.js';
import { type Env, pollUntil, run, type Service, type Services } from './processes.js';
import { freePort } from './tools.js';

const READY_TIMEOUT_MS = 20_000;
/** sshd's privilege-separation directory when it runs as root (Debian's default path). */
const PRIVSEP_DIR = '/run/sshd';

export interface SshOptions {
  readonly paths: Readonly<Record<'sshd' | 'ssh' | 'ssh-keygen', string>>;
  readonly tmpDir: string;
  readonly target: PgServer;
  readonly database: string;
  readonly env: Env;
  readonly signal: AbortSignal;
}

export interface SshTunnel {
  /** Local port of the ssh -L forward. */
  readonly port: number;
  /** sshd's port on 127.0.0.1. */
  readonly sshdPort: number;
  /**
   * Starts another ssh -L client (service `name`) that reaches sshd through `port` (a slow link
   * in front of sshd, say); resolves with its local port once PostgreSQL answers through it.
   */
  readonly forwardVia: (port: number, name: string) => Promise<number>;
  /** Undo what is not under the temp dir (a privsep dir we created). */
  readonly cleanup: () => Promise<void>;
}

export function sshdConfig(options: {
  port: number;
  hostKey: string;
  authorizedKeys: string;
}): string {
  return [
    `Port ${options.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${options.hostKey}`,
    `AuthorizedKeysFile ${options.authorizedKeys}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    // The keys live in a temp dir whose parents sshd would otherwise audit.
    'StrictModes no',
    'UsePAM no',
    'PidFile none',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

export async function startSshTunnel(services: Services, options: SshOptions): Promise<SshTunnel> {
  const { paths, signal, env } = options;
  const dir = join(options.tmpDir, 'ssh');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  for (const key of [hostKey, clientKey]) {
    const made = await run(paths['ssh-keygen'], ['-q', '-t', 'ed25519', '-N', '', '-f', key], {
      env,
      timeoutMs: 10_000,
      signal,
    });
    if (made.code !== 0) {
      throw new BenchError(
        BenchErrorCode.commandFailed,
        `ssh-keygen failed: ${made.stderr.trim()}`,
      );
    }
  }
  const authorizedKeys = join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`), { mode: 0o600 });
  const sshdPort = await freePort();
  const config = join(dir, 'sshd_config');
  await writeFile(config, sshdConfig({ port: sshdPort, hostKey, authorizedKeys }));

  let madePrivsep = false;
  if (process.getuid?.() === 0 && !existsSync(PRIVSEP_DIR)) {
    await mkdir(PRIVSEP_DIR, { mode: 0o755 });
    madePrivsep = true;
  }
  const cleanup = async () => {
    if (madePrivsep) await rm(PRIVSEP_DIR, { recursive: true, force: true });
  };

  // sshd must be started by absolute path; -D stay in the foreground, -e log to stderr.
  const sshd = services.start('sshd', paths.sshd, ['-D', '-e', '-f', config], env);
  await pollUntil(
    `sshd listening on 127.0.0.1:${sshdPort}`,
    () => accepts(sshdPort),
    [sshd],
    READY_TIMEOUT_MS,
    signal,
  );

  const forwardVia = (via: number, name: string) =>
    startForward(services, options, { clientKey, sshPort: via, name, sshd });
  const port = await forwardVia(sshdPort, 'ssh');
  return { port, sshdPort, forwardVia, cleanup };
}

/** An ssh -L client to sshd on `sshPort`, forwarding a free local port to the target. */
async function startForward(
  services: Services,
  options: SshOptions,
  client: { clientKey: string; sshPort: number; name: string; sshd: Service },
): Promise<number> {
  const { paths, signal, env, target } = options;
  const port = await freePort();
  const ssh = services.start(
    client.name,
    paths.ssh,
    [
      ...['-N', '-F', '/dev/null', '-i', client.clientKey, '-p', String(client.sshPort)],
      ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
      ...['-o', 'BatchMode=yes', '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR'],
      ...['-L', `127.0.0.1:${port}:${target.host}:${target.port}`],
      `${userInfo().username}@127.0.0.1`,
    ],
    env,
  );
  await pollUntil(
    `PostgreSQL answering through ssh -L 127.0.0.1:${port} (${client.name})`,
    () => answers({ ...target, host: '127.0.0.1', port }, options.database, env, signal),
    [client.sshd, ssh],
    READY_TIMEOUT_MS,
    signal,
  );
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
