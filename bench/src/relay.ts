/**
 * The `relay` reference path: pgbench ──► node ──► node ──► node ──► PostgreSQL, three bare
 * TCP relays (relay-process.ts) chained, as many Node.js processes as a byte crosses through
 * hoop connect, the broker and the agent. It carries no tunnel, framing, authentication or
 * policy: it is the floor a relay in Node.js starts from on this machine, so the report can say
 * how much of hoop's cost is its own and how much is three processes' sockets and event loops.
 */
import { fileURLToPath } from 'node:url';
import type { PgServer } from './postgres.js';
import { type Env, jsonLine, type Services } from './processes.js';

const READY_TIMEOUT_MS = 10_000;
/** Node.js processes on hoop connect's path: hoop connect, broker, agent. */
export const RELAY_HOPS = 3;

export interface RelayChainOptions {
  readonly target: Pick<PgServer, 'host' | 'port'>;
  readonly hops: number;
  readonly env: Env;
  readonly signal: AbortSignal;
}

/** Starts `hops` relays, each forwarding to the next and the last to `target`; the first's port. */
export async function startRelayChain(
  services: Services,
  options: RelayChainOptions,
): Promise<number> {
  if (!Number.isInteger(options.hops) || options.hops < 1) {
    throw new RangeError(`hops must be a positive integer, got ${options.hops}`);
  }
  const script = fileURLToPath(new URL('./relay-process.js', import.meta.url));
  let next = `${options.target.host}:${options.target.port}`;
  let port = options.target.port;
  for (let hop = options.hops; hop >= 1; hop--) {
    const relay = services.start(`relay ${hop}`, process.execPath, [script, next], options.env);
    const ready = await relay.waitFor<{ port: number }>(
      'its port',
      jsonLine<{ port: number }>((v) => typeof v.port === 'number'),
      READY_TIMEOUT_MS,
      options.signal,
    );
    port = ready.port;
    next = `127.0.0.1:${port}`;
  }
  return port;
}
