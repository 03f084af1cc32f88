/**
 * A whole hoop deployment as separate processes — broker, agents, `hoop connect`s — created
 * through the real CLI, with everything it starts released by `dispose()` in reverse order.
 *
 *   const d = await Deployment.start();
 *   after(() => d.dispose());
 *   const { agent } = await d.addAgent('edge');
 *   await d.addConnection('db', { agent: 'edge', target, password: { env: pw } });
 *   const c = await d.connect('db');        // psql c.url
 */
import type { Env } from './env.js';
import {
  type AgentProcess,
  type BrokerProcess,
  type ConnectProcess,
  runHoopJson,
  type StartBrokerOptions,
  startAgent,
  startBroker,
  startConnect,
} from './hoop.js';
import { Scope } from './scope.js';
import type { PgTarget } from './targets.js';

/** The variable that carries a stored password into `hoop admin connections create` only. */
export const PASSWORD_ENV_VAR = 'HOOP_E2E_TARGET_PASSWORD';

export type ConnectionPassword =
  /** `--password-env`: the value is in the CLI's environment for that one command. */
  | { readonly env: string }
  /** `--password-ref env:NAME`: the agent reads NAME from its own environment. */
  | { readonly ref: string };

export interface ConnectionView {
  name: string;
  type: string;
  agent: string;
  agentOnline: boolean;
  host: string;
  port: number;
  user: string;
  database: string;
  tls: string;
  credential: string;
}

export class Deployment {
  readonly scope = new Scope();

  private constructor(readonly broker: BrokerProcess) {
    this.scope.use(broker);
  }

  static async start(options?: StartBrokerOptions): Promise<Deployment> {
    return new Deployment(await startBroker(options));
  }

  /** Environment for admin CLI commands against this broker. */
  adminEnv(extra: Env = {}): Env {
    return this.broker.adminEnv(extra);
  }

  /** `hoop admin agents create NAME`, returning the token. */
  async createAgent(name: string): Promise<string> {
    const created = await runHoopJson<{ name: string; token: string }>(
      ['admin', 'agents', 'create', name],
      this.adminEnv(),
    );
    return created.token;
  }

  /** Creates an agent and starts its process (waits until connected). */
  async addAgent(
    name: string,
    options: { env?: Env } = {},
  ): Promise<{ agent: AgentProcess; token: string }> {
    const token = await this.createAgent(name);
    const agent = this.scope.use(
      await startAgent({
        brokerUrl: this.broker.url,
        token,
        ...(options.env === undefined ? {} : { env: options.env }),
      }),
    );
    return { agent, token };
  }

  /** `hoop admin connections create NAME --type postgres …`. */
  async addConnection(
    name: string,
    options: {
      agent: string;
      target: PgTarget;
      password?: ConnectionPassword;
      tls?: 'disable' | 'prefer' | 'require';
    },
  ): Promise<ConnectionView> {
    const { target } = options;
    const args = ['admin', 'connections', 'create', name, '--agent', options.agent]
      .concat(['--type', 'postgres', '--host', target.host, '--port', String(target.port)])
      .concat(['--user', target.user, '--database', target.database])
      .concat(['--tls', options.tls ?? 'disable']);
    let env = this.adminEnv();
    if (options.password !== undefined && 'env' in options.password) {
      args.push('--password-env', PASSWORD_ENV_VAR);
      env = this.adminEnv({ [PASSWORD_ENV_VAR]: options.password.env });
    } else if (options.password !== undefined) {
      args.push('--password-ref', options.password.ref);
    }
    return runHoopJson<ConnectionView>(args, env);
  }

  /** `hoop connect NAME --port 0` as the admin (or with `env`), registered for disposal. */
  async connect(name: string, env: Env = this.adminEnv()): Promise<ConnectProcess> {
    return this.scope.use(await startConnect(name, env));
  }

  /** GET /api/v1/… as the admin (bounded); throws on a non-2xx answer. */
  async api<T>(path: string): Promise<T> {
    const response = await fetch(new URL(path, this.broker.url), {
      headers: { authorization: `Bearer ${this.broker.adminToken}` },
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  /** Whether the broker sees the agent `name` online. */
  async agentOnline(name: string): Promise<boolean> {
    const agent = await this.api<{ online: boolean }>(`/api/v1/agents/${encodeURIComponent(name)}`);
    return agent.online;
  }

  dispose(): Promise<void> {
    return this.scope.dispose();
  }
}
