/**
 * The hoop paths, built from the real CLI exactly as a user would run them:
 *
 *   pgbench ──► hoop connect (127.0.0.1:PORT) ══ws══► broker ◄══ws══ agent ──► target
 *   pgbench ──► broker's native Postgres endpoint (127.0.0.1:PG_PORT) ◄══ws══ agent ──► target
 *
 * `startHoop`: broker (embedded store in a temp dir, port 0; native Postgres endpoint on a free
 * loopback port) → admin token from its file → agent created and started. `addConnection`: a
 * connection (with an optional policy document, set via `hoop admin connections policy set`)
 * and its own `hoop connect --port 0`. `nativeEndpoint`: the same connection straight through
 * the broker, as a CI job with only psql and a token reaches it. Every process is a `Service`,
 * so the caller's `Services.stopAll()` ends them whatever happens here.
 */

import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError, BenchErrorCode } from './errors.js';
import type { Endpoint } from './pgbench.js';
import type { PgServer } from './postgres.js';
import { type Env, jsonDocument, jsonLine, run, type Service, type Services } from './processes.js';

const READY_TIMEOUT_MS = 60_000;
const COMMAND_TIMEOUT_MS = 30_000;
const AGENT = 'bench';
const LOOPBACK = '127.0.0.1';
/** Each process's inspector on a free loopback port, for the soak's garbage collections. */
const INSPECT = `--inspect=${LOOPBACK}:0`;

export interface Hoop {
  readonly broker: Service;
  readonly agent: Service;
  /** Environment of an admin CLI (broker URL and admin token). */
  readonly adminEnv: Env;
  readonly adminToken: string;
  /** Port of the broker's native Postgres endpoint on 127.0.0.1 (`--pg-listen`). */
  readonly pgPort: number;
  /** Port of the agent's direct endpoint on 127.0.0.1 (HOOP_AGENT_PG_LISTEN). */
  readonly directPort: number;
  /** Node's arguments before a hoop command: the launcher's flags (its shebang) and its path. */
  readonly node: readonly string[];
  /** The same for broker, agents and `hoop connect`: with `--inspect` when asked (the soak). */
  readonly serviceNode: readonly string[];
  readonly tmpDir: string;
  readonly signal: AbortSignal;
  readonly services: Services;
  /** Environment every hoop process of the bench starts with (HOME, config, log level). */
  readonly baseEnv: Env;
}

export interface HoopConnection {
  readonly name: string;
  /** Local port of its `hoop connect`. */
  readonly port: number;
  readonly connect: Service;
}

export interface HoopOptions {
  readonly repoRoot: string;
  /** Private scratch dir: broker data, HOME and the CLI config. */
  readonly tmpDir: string;
  /** The bench's environment; HOOP_* variables in it are ignored. */
  readonly env: Env;
  readonly signal: AbortSignal;
  /** The broker's store: this PostgreSQL (HOOP_DATABASE_URL) instead of the embedded one. */
  readonly databaseUrl?: string;
  /** Appended to the service names in logs, e.g. ` (postgres store)`. */
  readonly label?: string;
  /** Start broker, agents and `hoop connect` with their inspector on (for the soak). */
  readonly inspect?: boolean;
}

interface BrokerReady {
  url: string;
  adminTokenFile: string | null;
  /** The native Postgres endpoint's port (it listens on port 0, so the broker says which). */
  pgPort: number | null;
}

interface StateEvent {
  event: string;
  state: string;
}

export async function startHoop(services: Services, options: HoopOptions): Promise<Hoop> {
  const cli = join(options.repoRoot, 'cli', 'bin', 'hoop.js');
  if (!existsSync(join(options.repoRoot, 'cli', 'dist', 'main.js'))) {
    throw new BenchError(BenchErrorCode.notFound, 'hoop is not built: run `npm run build` first');
  }
  const { env: launcherEnv, flags } = await launcher(cli);
  const node = [...flags, cli];
  const serviceNode = options.inspect === true ? [...flags, INSPECT, cli] : node;
  const { signal } = options;
  const baseEnv: Env = {
    ...withoutHoopVariables(options.env),
    ...launcherEnv,
    HOME: options.tmpDir,
    HOOP_CONFIG: join(options.tmpDir, 'config.json'),
    HOOP_LOG_LEVEL: 'warn',
  };

  const label = options.label ?? '';
  const broker = services.start(
    `broker${label}`,
    process.execPath,
    [
      ...[...serviceNode, 'broker', 'start', '--listen', `${LOOPBACK}:0`],
      ...['--pg-listen', `${LOOPBACK}:0`],
      ...['--data-dir', join(options.tmpDir, 'broker'), '--json'],
    ],
    options.databaseUrl === undefined
      ? baseEnv
      : { ...baseEnv, HOOP_DATABASE_URL: options.databaseUrl },
  );
  const ready = await broker.waitFor<BrokerReady>(
    'its address',
    jsonDocument,
    READY_TIMEOUT_MS,
    signal,
  );
  if (ready.adminTokenFile === null) {
    throw new BenchError(BenchErrorCode.commandFailed, 'the broker wrote no admin token file');
  }
  if (ready.pgPort === null || ready.pgPort === undefined) {
    throw new BenchError(
      BenchErrorCode.commandFailed,
      'the broker reported no native Postgres endpoint port',
    );
  }
  const pgPort = ready.pgPort;
  const adminToken = (await readFile(ready.adminTokenFile, 'utf8')).trim();
  const adminEnv: Env = { ...baseEnv, HOOP_BROKER_URL: ready.url, HOOP_TOKEN: adminToken };

  const hoop = {
    broker,
    adminEnv,
    adminToken,
    pgPort,
    node,
    serviceNode,
    tmpDir: options.tmpDir,
    signal,
    services,
    baseEnv,
  };
  const agent = await startAgent(hoop, AGENT, `agent${label}`, {
    HOOP_AGENT_PG_LISTEN: `${LOOPBACK}:0`,
  });
  const direct = await agent.waitFor(
    'its direct endpoint',
    jsonLine<{ event: string; port: number }>((e) => e.event === 'direct-endpoint'),
    READY_TIMEOUT_MS,
    signal,
  );
  return { ...hoop, agent, directPort: direct.port };
}

/**
 * Creates agent `name` with `hoop admin agents create` and runs `hoop agent start` for it with
 * `env` added (HOOP_PG_WARM, say); resolves once it is connected to the broker.
 */
export async function startAgent(
  hoop: Omit<Hoop, 'agent' | 'directPort'>,
  name: string,
  service: string,
  env: Env,
): Promise<Service> {
  const { node, adminEnv, signal } = hoop;
  const created = await hoopJson<{ name: string; token: string }>(
    node,
    ['admin', 'agents', 'create', name, '--json'],
    adminEnv,
    signal,
  );
  const agent = hoop.services.start(
    service,
    process.execPath,
    [...hoop.serviceNode, 'agent', 'start', '--json'],
    {
      ...hoop.baseEnv,
      ...env,
      HOOP_BROKER_URL: adminEnv['HOOP_BROKER_URL'],
      HOOP_AGENT_TOKEN: created.token,
    },
  );
  await agent.waitFor(
    'a connection to the broker',
    jsonLine<StateEvent>((e) => e.event === 'state' && e.state === 'connected'),
    READY_TIMEOUT_MS,
    signal,
  );
  return agent;
}

/**
 * `connection` through the broker's native Postgres endpoint (or, `direct`, the agent's direct
 * endpoint): user = the connection's name, password = the admin token (any hoop token would do),
 * plaintext like every bench path.
 */
export function nativeEndpoint(
  hoop: Hoop,
  connection: string,
  database: string,
  direct = false,
): Endpoint {
  return {
    host: LOOPBACK,
    port: direct ? hoop.directPort : hoop.pgPort,
    user: connection,
    database,
    password: hoop.adminToken,
  };
}

/**
 * Creates connection `name` to `target` (TLS off) on `agent` (the bench's first agent by
 * default), applies `policy` (a YAML document) when given — otherwise the connection keeps the
 * default policy (recording on) — and serves it with its own `hoop connect --port 0`.
 */
export async function addConnection(
  hoop: Hoop,
  name: string,
  target: PgServer,
  database: string,
  policy?: string,
  agent: string = AGENT,
): Promise<HoopConnection> {
  const { node, adminEnv, signal } = hoop;
  await hoopJson(
    node,
    [
      ...['admin', 'connections', 'create', name, '--agent', agent, '--type', 'postgres'],
      ...['--host', target.host, '--port', String(target.port), '--user', target.user],
      ...['--database', database, '--tls', 'disable', '--json'],
    ],
    adminEnv,
    signal,
  );
  if (policy !== undefined) {
    const file = join(hoop.tmpDir, `policy-${name}.yaml`);
    await writeFile(file, policy);
    await hoopJson(
      node,
      ['admin', 'connections', 'policy', 'set', name, '--file', file, '--json'],
      adminEnv,
      signal,
    );
  }
  return startConnect(hoop, name, adminEnv, `connect ${name}`);
}

/**
 * Another `hoop connect` for connection `name` whose tunnel goes to `brokerUrl` (the broker
 * behind a slow link, say) instead of the broker's own address.
 */
export function connectVia(
  hoop: Hoop,
  name: string,
  brokerUrl: string,
  service: string,
): Promise<HoopConnection> {
  return startConnect(hoop, name, { ...hoop.adminEnv, HOOP_BROKER_URL: brokerUrl }, service);
}

async function startConnect(
  hoop: Hoop,
  name: string,
  env: Env,
  service: string,
): Promise<HoopConnection> {
  const connect = hoop.services.start(
    service,
    process.execPath,
    [...hoop.serviceNode, 'connect', name, '--port', '0', '--json'],
    env,
  );
  const listening = await connect.waitFor<{ port: number }>(
    'its local port',
    jsonDocument,
    READY_TIMEOUT_MS,
    hoop.signal,
  );
  return { name, port: listening.port, connect };
}

async function hoopJson<T>(
  node: readonly string[],
  args: readonly string[],
  env: Env,
  signal: AbortSignal,
): Promise<T> {
  const command = `hoop ${args.slice(0, 4).join(' ')}`;
  const result = await run(process.execPath, [...node, ...args], {
    env,
    timeoutMs: COMMAND_TIMEOUT_MS,
    signal,
  });
  if (result.code !== 0) {
    throw new BenchError(
      BenchErrorCode.commandFailed,
      `${command} failed (exit code ${result.code}): ${result.stderr.trim()}`,
    );
  }
  // stdout may hold a token (agents create): parse it, never print it.
  const value = jsonDocument<T>(result.stdout);
  if (value === undefined) {
    throw new BenchError(BenchErrorCode.commandFailed, `${command} printed no JSON document`);
  }
  return value;
}

/**
 * The environment and Node's flags of the launcher's shebang
 * (`#!/usr/bin/env -S [NAME=VALUE ...] node FLAGS`): the bench runs hoop as a user's `hoop`
 * runs, and keeps one copy of them.
 */
export async function launcher(cli: string): Promise<{ env: Env; flags: string[] }> {
  const [first = ''] = (await readFile(cli, 'utf8')).split('\n', 1);
  const match =
    /^#!\/usr\/bin\/env -S((?: +[A-Z_][A-Z0-9_]*=[\w.-]+)*) node((?: +--[\w-]+(?:=\S+)?)*) *$/.exec(
      first,
    );
  if (match === null) {
    throw new BenchError(
      BenchErrorCode.notFound,
      `${cli} has no \`env -S [NAME=VALUE ...] node FLAGS\` shebang: ${first}`,
    );
  }
  const words = (text: string | undefined) => (text ?? '').split(' ').filter((w) => w !== '');
  const env: Record<string, string> = {};
  for (const assignment of words(match[1])) {
    const at = assignment.indexOf('=');
    env[assignment.slice(0, at)] = assignment.slice(at + 1);
  }
  return { env, flags: words(match[2]) };
}

/** The bench decides every HOOP_* setting itself (e.g. never a HOOP_DATABASE_URL from the shell). */
function withoutHoopVariables(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('HOOP_')));
}
