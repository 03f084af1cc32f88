/**
 * The `store` case: connection setup when the broker's store is far away (a managed PostgreSQL in
 * another zone, a networked disk). A second hoop whose broker stores in PostgreSQL
 * (HOOP_DATABASE_URL) through a slow link (link.ts, `rttMs` round trip), with two agents, and
 * pgbench -C -c 1 through each:
 *
 *   hoop         the default agent: it logs in to the target while the broker writes the
 *                session row (admission, HOOP_AGENT_ADMISSION=overlap)
 *   hoop-strict  an agent with HOOP_AGENT_ADMISSION=strict: the broker holds the client's startup
 *                until the row is written, so the target's login follows the store's round trip
 *
 * The difference between the two is the store latency that admission takes off a new connection.
 */

import { mkdir } from 'node:fs/promises';
import { addConnection, startAgent, startHoop } from './hoop.js';
import { startSlowLink } from './link.js';
import { type MatrixOptions, runConnectMatrix } from './matrix.js';
import { type Endpoint, loopback } from './pgbench.js';
import { NO_POLICY } from './policies.js';
import { answers, type PgServer } from './postgres.js';
import { type Env, pollUntil, type Services } from './processes.js';
import type { PathName, StoreLatencyResult } from './report.js';

export interface StoreLatencyOptions extends Omit<MatrixOptions, 'endpoints' | 'clients'> {
  readonly rttMs: number;
  readonly services: Services;
  readonly repoRoot: string;
  /** A fresh directory for this hoop's files. */
  readonly tmpDir: string;
  /** The bench's environment (for the hoop processes). */
  readonly hoopEnv: Env;
  readonly target: PgServer;
  /** The pgbench database. */
  readonly database: string;
  /** An empty database on `target` for the broker's store (the caller creates and drops it). */
  readonly storeDatabase: string;
  /** Where the link's close function goes (run after every process has stopped). */
  readonly cleanups: (() => Promise<void>)[];
}

const STRICT_AGENT = 'bench-strict';
const READY_TIMEOUT_MS = 20_000;

export async function runStoreLatencyCase(o: StoreLatencyOptions): Promise<StoreLatencyResult> {
  const link = await startSlowLink(o.target, o.rttMs / 2);
  o.cleanups.push(link.close);
  await mkdir(o.tmpDir, { recursive: true });
  o.log(`bench: store: starting a hoop whose store is ${o.rttMs} ms (round trip) away…`);
  const far = await startHoop(o.services, {
    repoRoot: o.repoRoot,
    tmpDir: o.tmpDir,
    env: o.hoopEnv,
    signal: o.signal,
    databaseUrl: `postgres://${o.target.user}@127.0.0.1:${link.port}/${o.storeDatabase}`,
    label: ' (far store)',
  });
  await startAgent(far, STRICT_AGENT, 'agent-strict (far store)', {
    HOOP_AGENT_ADMISSION: 'strict',
  });
  const overlap = await addConnection(far, 'bench-overlap', o.target, o.database, NO_POLICY);
  const strict = await addConnection(
    far,
    'bench-strict',
    o.target,
    o.database,
    NO_POLICY,
    STRICT_AGENT,
  );
  const local = (port: number): Endpoint => loopback(port, o.target.user, o.database);
  const endpoints = new Map<PathName, Endpoint>([
    ['direct', { ...o.target, database: o.database }],
    ['hoop', local(overlap.port)],
    ['hoop-strict', local(strict.port)],
  ]);
  for (const [path, endpoint] of endpoints) {
    await pollUntil(
      `an answer to select 1 through ${path} (far store)`,
      () => answers(endpoint, o.database, o.env, o.signal),
      [],
      READY_TIMEOUT_MS,
      o.signal,
    );
  }
  const connect = await runConnectMatrix({ ...o, endpoints, clients: [1] });
  return { rttMs: o.rttMs, connect };
}
