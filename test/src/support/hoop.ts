/**
 * The real `hoop` CLI as child processes: `runHoop` for one-shot commands, and handles for the
 * long-running ones — `hoop broker start`, `hoop agent start`, `hoop connect` — that wait
 * (bounded) for their JSON ready output and can be stopped, killed and restarted.
 *
 *   await using broker = await startBroker();
 *   const agent = await startAgent({ brokerUrl: broker.url, token });
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Env, isolatedEnv, tempDir, withEnv } from './env.js';
import { ChildHandle, type Exit, runToExit, type StopResult } from './process.js';

/** The repository root (this file is test/dist/support/hoop.js once compiled). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const hoopBin = join(repoRoot, 'cli', 'bin', 'hoop.js');

/** How long a service gets to print its ready output. Generous: CI machines are slow. */
export const READY_TIMEOUT_MS = 60_000;

export function spawnHoop(
  name: string,
  args: readonly string[],
  env: Env,
  onStdout?: (chunk: Buffer) => void,
): ChildHandle {
  return new ChildHandle({
    name,
    command: process.execPath,
    args: [hoopBin, ...args],
    env,
    cwd: repoRoot,
    ...(onStdout === undefined ? {} : { onStdout }),
  });
}

export interface HoopResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `hoop ARGS` to completion (bounded) and returns its exit code and output. */
export async function runHoop(
  args: readonly string[],
  env: Env,
  options: { timeoutMs?: number } = {},
): Promise<HoopResult> {
  const { code, stdout, stderr } = await runToExit({
    name: `hoop ${args.slice(0, 3).join(' ')}`,
    command: process.execPath,
    args: [hoopBin, ...args],
    env,
    cwd: repoRoot,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return { code, stdout, stderr };
}

/** Runs `hoop ARGS --json`, expects exit 0, and returns the parsed document. */
export async function runHoopJson<T>(args: readonly string[], env: Env): Promise<T> {
  const result = await runHoop([...args, '--json'], env);
  if (result.code !== 0) {
    throw new Error(
      `hoop ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
  return JSON.parse(result.stdout) as T;
}

// ---- broker ----

interface BrokerReady {
  url: string;
  dataDir: string;
  adminTokenFile: string | null;
  /** The native Postgres endpoint's port, when HOOP_PG_LISTEN is set. */
  pgPort: number | null;
}

export interface StartBrokerOptions {
  /** Reuse a data dir (a restart); a fresh temp dir by default. */
  readonly dataDir?: string;
  /** host:port; default 127.0.0.1:0. */
  readonly listen?: string;
  /** Extra environment for the broker process. */
  readonly env?: Env;
}

export class BrokerProcess {
  process: ChildHandle;
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** The admin token the first start wrote to `<dataDir>/admin.token`. */
  readonly adminToken: string;
  /** The native Postgres endpoint's port (first start), when HOOP_PG_LISTEN is set. */
  readonly pgPort: number | undefined;
  private readonly env: Env;

  /** One temp HOME/config for every admin command against this broker. */
  private readonly adminBase: Env;

  private constructor(child: ChildHandle, ready: BrokerReady, adminToken: string, env: Env) {
    this.process = child;
    this.url = ready.url;
    this.port = Number(new URL(ready.url).port);
    this.dataDir = ready.dataDir;
    this.adminToken = adminToken;
    this.pgPort = ready.pgPort ?? undefined;
    this.env = env;
    this.adminBase = isolatedEnv({ HOOP_BROKER_URL: this.url, HOOP_TOKEN: adminToken }).env;
  }

  static async start(options: StartBrokerOptions = {}): Promise<BrokerProcess> {
    const dataDir = options.dataDir ?? join(tempDir('broker'), 'data');
    const env = isolatedEnv(options.env).env;
    const { child, ready } = await BrokerProcess.launch(
      options.listen ?? '127.0.0.1:0',
      dataDir,
      env,
    );
    if (ready.adminTokenFile === null) {
      await child.kill();
      throw new Error(`broker on an existing data dir ${dataDir} printed no admin token file`);
    }
    const adminToken = (await readFile(ready.adminTokenFile, 'utf8')).trim();
    return new BrokerProcess(child, ready, adminToken, env);
  }

  private static async launch(
    listen: string,
    dataDir: string,
    env: Env,
  ): Promise<{ child: ChildHandle; ready: BrokerReady }> {
    const child = spawnHoop(
      'broker',
      ['broker', 'start', '--listen', listen, '--data-dir', dataDir, '--json'],
      env,
    );
    try {
      const ready = await child.waitForJson<BrokerReady>(READY_TIMEOUT_MS, 'the broker to listen');
      return { child, ready };
    } catch (err) {
      await child.kill();
      throw err;
    }
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Environment for CLI commands run as the admin against this broker. */
  adminEnv(extra: Env = {}): Env {
    return { ...this.adminBase, ...extra };
  }

  /** Environment for CLI commands with some other token (e.g. a wrong one). */
  userEnv(token: string, extra: Env = {}): Env {
    return withEnv(this.adminEnv(extra), { HOOP_TOKEN: token });
  }

  /** SIGTERM (SIGKILL after the grace period). */
  stop(): Promise<StopResult> {
    return this.process.stop();
  }

  kill(): Promise<Exit> {
    return this.process.kill();
  }

  /** Graceful stop, then a new broker process on the same data dir and the same port. */
  async restart(): Promise<void> {
    const exit = await this.process.stop();
    if (exit.killed) throw new Error(`broker did not stop on SIGTERM\n${this.process.describe()}`);
    await this.startAgain();
  }

  /** After a stop: a new broker process on the same data dir and the same port. */
  async startAgain(): Promise<void> {
    if (this.process.running) throw new Error('the broker is still running');
    const { child, ready } = await BrokerProcess.launch(
      `127.0.0.1:${this.port}`,
      this.dataDir,
      this.env,
    );
    this.process = child;
    if (ready.url !== this.url)
      throw new Error(`restarted broker is at ${ready.url}, not ${this.url}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}

export const startBroker = (options?: StartBrokerOptions): Promise<BrokerProcess> =>
  BrokerProcess.start(options);

// ---- agent ----

export interface AgentEvent {
  event: string;
  state?: string;
  error?: { code: string; message: string; hint: string };
}

export interface StartAgentOptions {
  readonly brokerUrl: string;
  readonly token: string;
  /** Extra environment (e.g. the variable an env:NAME credential reference names). */
  readonly env?: Env;
  /** Wait for the first `connected` event. Default true. */
  readonly waitConnected?: boolean;
}

export class AgentProcess {
  process: ChildHandle;
  private readonly env: Env;

  private constructor(process: ChildHandle, env: Env) {
    this.process = process;
    this.env = env;
  }

  static async start(options: StartAgentOptions): Promise<AgentProcess> {
    const env = isolatedEnv({
      HOOP_BROKER_URL: options.brokerUrl,
      HOOP_AGENT_TOKEN: options.token,
      ...options.env,
    }).env;
    const agent = new AgentProcess(AgentProcess.launch(env), env);
    if (options.waitConnected !== false) {
      try {
        await agent.waitConnected(1);
      } catch (err) {
        await agent.kill();
        throw err;
      }
    }
    return agent;
  }

  private static launch(env: Env): ChildHandle {
    return spawnHoop('agent', ['agent', 'start', '--json'], env);
  }

  get pid(): number {
    return this.process.pid;
  }

  /** The agent's state events so far (from this process). */
  events(): AgentEvent[] {
    return this.process.jsonLines<AgentEvent>().filter((e) => e.event === 'state');
  }

  /** The port of the agent's direct endpoint (HOOP_AGENT_PG_LISTEN), once it reported it. */
  async directPort(timeoutMs = READY_TIMEOUT_MS): Promise<number> {
    return this.process.waitForStdout(
      () =>
        this.process
          .jsonLines<{ event: string; port?: number }>()
          .find((e) => e.event === 'direct-endpoint')?.port,
      { timeoutMs, what: 'the agent to report its direct endpoint' },
    );
  }

  connectedCount(): number {
    return this.events().filter((e) => e.state === 'connected').length;
  }

  /** Waits until this process has reported `connected` at least `count` times. */
  async waitConnected(count: number, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    await this.process.waitForStdout(() => (this.connectedCount() >= count ? true : undefined), {
      timeoutMs,
      what: `the agent to report "connected" (${count}×)`,
    });
  }

  stop(): Promise<StopResult> {
    return this.process.stop();
  }

  kill(): Promise<Exit> {
    return this.process.kill();
  }

  /** Ends the agent process (SIGKILL by default: a crash) and starts a new one. */
  async restart(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL') await this.process.kill();
    else await this.process.stop();
    await this.start();
  }

  /** Starts a new agent process with the same environment and waits until it is connected. */
  async start(): Promise<void> {
    if (this.process.running) throw new Error('agent is still running');
    this.process = AgentProcess.launch(this.env);
    await this.waitConnected(1);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}

export const startAgent = (options: StartAgentOptions): Promise<AgentProcess> =>
  AgentProcess.start(options);

// ---- hoop connect ----

export interface ConnectReady {
  connection: string;
  type: string;
  host: string;
  port: number;
  url: string;
}

export class ConnectProcess {
  constructor(
    readonly process: ChildHandle,
    readonly ready: ConnectReady,
  ) {}

  get url(): string {
    return this.ready.url;
  }

  get port(): number {
    return this.ready.port;
  }

  get pid(): number {
    return this.process.pid;
  }

  /** The `{"event":"refused",…}` lines `hoop connect --json` wrote to stderr. */
  refusals(): { event: string; error: { code: string; message: string; hint: string } }[] {
    const out: { event: string; error: { code: string; message: string; hint: string } }[] = [];
    for (const line of this.process.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const value = JSON.parse(line) as { event?: string };
        if (value.event === 'refused') out.push(value as never);
      } catch {
        // a log line
      }
    }
    return out;
  }

  stop(): Promise<StopResult> {
    return this.process.stop();
  }

  kill(): Promise<Exit> {
    return this.process.kill();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}

/** `hoop connect NAME --port 0 --json` with `env` (HOOP_BROKER_URL, HOOP_TOKEN); waits until ready. */
export async function startConnect(connection: string, env: Env): Promise<ConnectProcess> {
  const process = spawnHoop(
    `hoop connect ${connection}`,
    ['connect', connection, '--port', '0', '--json'],
    env,
  );
  try {
    const ready = await process.waitForJson<ConnectReady>(
      READY_TIMEOUT_MS,
      `hoop connect ${connection} to be ready`,
    );
    return new ConnectProcess(process, ready);
  } catch (err) {
    await process.kill();
    throw err;
  }
}
