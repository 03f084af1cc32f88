/**
 * The pgbouncer path: pgbench ──► pgbouncer (session pooling, 127.0.0.1:PORT) ──► PostgreSQL.
 *
 * A private config dir under the bench's temp dir; pgbouncer refuses to run as root, so when the
 * bench is root it runs as the `postgres` user (runuser) and the dir is handed to that user.
 * Config reference: https://www.pgbouncer.org/config.html
 */

import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError, BenchErrorCode } from './errors.js';
import { answers, type PgServer } from './postgres.js';
import { type Env, pollUntil, run, type Services } from './processes.js';
import { findBinary, freePort } from './tools.js';

const READY_TIMEOUT_MS = 20_000;
const RUN_AS = 'postgres';

export interface PgbouncerOptions {
  readonly binary: string;
  readonly tmpDir: string;
  readonly target: PgServer;
  readonly database: string;
  readonly env: Env;
  readonly signal: AbortSignal;
}

/** The pgbouncer.ini of the bench: trust auth, session pooling, quiet logs. */
export function pgbouncerConfig(options: {
  port: number;
  target: PgServer;
  database: string;
  authFile: string;
}): string {
  const { target } = options;
  return [
    '[databases]',
    `${options.database} = host=${target.host} port=${target.port} user=${target.user} dbname=${options.database}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${options.port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${options.authFile}`,
    'pool_mode = session',
    'max_client_conn = 2000',
    // -c 32 needs 32 server connections; PostgreSQL allows 100.
    'default_pool_size = 40',
    'ignore_startup_parameters = extra_float_digits',
    'log_connections = 0',
    'log_disconnections = 0',
    'log_pooler_errors = 1',
    '',
  ].join('\n');
}

export async function startPgbouncer(
  services: Services,
  options: PgbouncerOptions,
): Promise<number> {
  const dir = join(options.tmpDir, 'pgbouncer');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const authFile = join(dir, 'userlist.txt');
  await writeFile(
    ini,
    pgbouncerConfig({ port, target: options.target, database: options.database, authFile }),
  );
  await writeFile(authFile, `"${options.target.user}" ""\n`);

  let command = options.binary;
  let args = [ini];
  if (process.getuid?.() === 0) {
    const runuser = findBinary('runuser', options.env);
    if (runuser === undefined) {
      throw new BenchError(
        BenchErrorCode.notFound,
        'pgbouncer will not run as root, and runuser is not on PATH',
      );
    }
    const uid = await idOf(['-u', RUN_AS], options);
    const gid = await idOf(['-g', RUN_AS], options);
    // The temp dir is root's 0700: let the postgres user through to its own subdir.
    await chmod(options.tmpDir, 0o711);
    for (const path of [dir, ini, authFile]) await chown(path, uid, gid);
    command = runuser;
    args = ['-u', RUN_AS, '--', options.binary, ini];
  }
  const service = services.start('pgbouncer', command, args, options.env);
  const endpoint = { host: '127.0.0.1', port, user: options.target.user };
  await pollUntil(
    `pgbouncer answering on 127.0.0.1:${port}`,
    () => answers(endpoint, options.database, options.env, options.signal),
    [service],
    READY_TIMEOUT_MS,
    options.signal,
  );
  return port;
}

async function idOf(args: string[], options: PgbouncerOptions): Promise<number> {
  const result = await run('id', args, {
    env: options.env,
    timeoutMs: 5000,
    signal: options.signal,
  });
  const id = Number(result.stdout.trim());
  if (result.code !== 0 || !Number.isInteger(id)) {
    throw new BenchError(
      BenchErrorCode.notFound,
      `pgbouncer will not run as root and there is no "${RUN_AS}" user to run it as`,
    );
  }
  return id;
}
