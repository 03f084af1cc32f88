/**
 * Test support: a real broker in this process (PGlite store in a temp dir, ephemeral ports), real
 * agents connected to it, and the connections tests point at — the setup the in-process tests
 * share. Exported as `@hoop/broker/testing`; not part of the broker's runtime API.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Engine, EngineRegistry, type EngineSession } from '@hoop/agent';
import { type Logger, type Policy, silentLogger, TunnelClient } from '@hoop/shared';
import { type Broker, type StartBrokerOptions, startBroker } from '../broker.js';
import type { BrokerConfigInput } from '../config.js';

/** A parsed JSON reply: `{}` for an empty body. */
export type ApiBody = Record<string, unknown> & { error?: { code: string; message: string } };

export interface ApiReply {
  status: number;
  body: ApiBody;
  text: string;
}

export interface TestBrokerOptions {
  /** Prefix of the temp dir (under the OS temp dir) that holds the broker's data. */
  readonly prefix: string;
  /** The data dir inside the temp dir; default: the temp dir itself. */
  readonly dataSubdir?: string;
  /** Also serve the native Postgres endpoint on an ephemeral port. */
  readonly pgListen?: boolean;
  /** More broker configuration (OIDC, TLS files, …), given the temp dir. */
  readonly config?: (dir: string) => Partial<BrokerConfigInput>;
  /** The broker's logger, and the default for agents started with it; default: silent. */
  readonly logger?: Logger;
  /** Other start options (review webhook, clock, …). */
  readonly start?: Omit<StartBrokerOptions, 'logger'>;
}

export interface TestAgentOptions {
  /** Default: the test broker's logger. */
  readonly logger?: Logger;
  readonly engines?: EngineRegistry;
  /** AgentOptions.waitForAdmit (default true); false: an agent as from before `admit`. */
  readonly waitForAdmit?: boolean;
  /** Also start the agent's direct endpoint on an ephemeral loopback port (`listenDirect()`). */
  readonly direct?: boolean;
}

export interface TestBroker {
  readonly broker: Broker;
  /** The temp dir; removed by `close()`. */
  readonly dir: string;
  /** A fresh `hoop_pat_…` token of the bootstrapped admin. */
  readonly adminToken: string;
  /** A JSON API call with this bearer (none when undefined). */
  request(
    method: string,
    path: string,
    token: string | undefined,
    body?: unknown,
  ): Promise<ApiReply>;
  /** A JSON API call as the admin. */
  api(method: string, path: string, body?: unknown): Promise<ApiReply>;
  /** Registers an agent, starts a real `Agent` for it and waits until it is connected. */
  startAgent(name: string, options?: TestAgentOptions): Promise<Agent>;
  /** Creates a local user in these groups (over the API) and returns a login token. */
  addUser(name: string, groups: string[]): Promise<string>;
  /** A tunnel client for this broker; default: as the admin, silent. */
  tunnel(token?: string, logger?: Logger): TunnelClient;
  /** Stops the agents, closes the broker and removes the temp dir. */
  close(): Promise<void>;
}

export async function startTestBroker(options: TestBrokerOptions): Promise<TestBroker> {
  const dir = await mkdtemp(join(tmpdir(), options.prefix));
  const adminToken = `hoop_pat_${randomBytes(24).toString('base64url')}`;
  const logger = options.logger ?? silentLogger;
  const agents: Agent[] = [];
  let broker: Broker;
  try {
    const extra = options.config?.(dir) ?? {};
    broker = await startBroker(
      {
        listen: '127.0.0.1:0',
        ...(options.pgListen === true ? { pgListen: '127.0.0.1:0' } : {}),
        dataDir: options.dataSubdir === undefined ? dir : join(dir, options.dataSubdir),
        adminToken,
        ...extra,
      },
      { ...options.start, logger },
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const request = async (
    method: string,
    path: string,
    token: string | undefined,
    body?: unknown,
  ): Promise<ApiReply> => {
    const res = await fetch(new URL(path, broker.url), {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : JSON.parse(text), text };
  };

  return {
    broker,
    dir,
    adminToken,
    request,
    api: (method, path, body) => request(method, path, adminToken, body),
    async startAgent(name, agentOptions = {}) {
      const { token } = await broker.store.createAgent(name);
      const agent = new Agent({
        brokerUrl: broker.url,
        token,
        logger: agentOptions.logger ?? logger,
        ...(agentOptions.engines === undefined ? {} : { engines: agentOptions.engines }),
        ...(agentOptions.waitForAdmit === undefined
          ? {}
          : { waitForAdmit: agentOptions.waitForAdmit }),
        ...(agentOptions.direct === true ? { direct: { host: '127.0.0.1', port: 0 } } : {}),
      });
      agents.push(agent);
      agent.start();
      await agent.waitConnected(10_000);
      if (agentOptions.direct === true) await agent.listenDirect();
      return agent;
    },
    async addUser(name, groups) {
      const password = `pw-${randomBytes(8).toString('hex')}`;
      const made = await request('POST', '/api/v1/users', adminToken, { name, groups, password });
      assert.equal(made.status, 201, made.text);
      const login = await request('POST', '/api/v1/auth/login', undefined, {
        user: name,
        password,
      });
      assert.equal(login.status, 200, login.text);
      return login.body['token'] as string;
    },
    tunnel: (token = adminToken, tunnelLogger = silentLogger) =>
      new TunnelClient({ brokerUrl: broker.url, token, logger: tunnelLogger }),
    async close() {
      for (const agent of agents) await agent.stop();
      await broker.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The machine's PostgreSQL: 127.0.0.1:5432, user postgres, database test, no TLS. */
const LOCAL_PG = {
  host: '127.0.0.1',
  port: 5432,
  user: 'postgres',
  database: 'test',
  tls: 'disable',
} as const;

/** A target that is never dialled: for agents with a stand-in engine such as echo. */
const NOWHERE = { host: '127.0.0.1', port: 1, user: 'x', database: 'x' } as const;

/** A Postgres connection `name` to the machine's PostgreSQL, reached through `agent`. */
export async function addLocalPgConnection(
  broker: Broker,
  name: string,
  agent: string,
): Promise<void> {
  await broker.store.createConnection({ name, agent, type: 'postgres', ...LOCAL_PG });
}

/** A Postgres connection `name` on `agent` whose target is never dialled (echo engines). */
export async function addEchoConnection(
  broker: Broker,
  name: string,
  agent: string,
): Promise<void> {
  await broker.store.createConnection({ name, agent, type: 'postgres', ...NOWHERE });
}

/** A Postgres-typed engine that sends every byte back; it remembers each session's policy. */
export class EchoEngine implements Engine {
  readonly type = 'postgres' as const;
  readonly policies: Policy[] = [];
  serve(session: EngineSession): Promise<void> {
    this.policies.push(session.policy);
    return new Promise((resolve) => {
      session.client.on('close', () => resolve());
      // Like a real engine, it passes nothing back before the broker admits the session.
      session.admitted.then(
        () => session.client.pipe(session.client),
        () => session.client.destroy(),
      );
    });
  }
}

/** Engines for `startAgent`: just this echo engine (a fresh one by default). */
export function echoEngines(engine: Engine = new EchoEngine()): EngineRegistry {
  const engines = new EngineRegistry();
  engines.register(engine);
  return engines;
}
