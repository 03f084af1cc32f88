/**
 * The `wan` case: connection setup when the client side is far from the server side. Each path
 * gets a slow link (link.ts, `rttMs` round trip) on the leg that crosses the WAN in a real
 * deployment, and pgbench -C -c 1 counts what a new connection costs then:
 *
 *   direct       pgbench ~~~► PostgreSQL                      (the database exposed to the client)
 *   ssh -L       pgbench ──► ssh ~~~► sshd ──► PostgreSQL      (a bastion)
 *   hoop         pgbench ──► hoop connect ~~~► broker ══► agent ──► PostgreSQL
 *   hoop-native  pgbench ~~~► broker ══► agent ──► PostgreSQL  (a CI job with psql and a token)
 *
 * On loopback a round trip costs tens of µs, so what the other cases measure is CPU; here it is
 * the number of round trips each path needs on its slow leg before the first query.
 */

import { connectVia, type Hoop, nativeEndpoint } from './hoop.js';
import { startSlowLink } from './link.js';
import { type MatrixOptions, runConnectMatrix } from './matrix.js';
import { type Endpoint, loopback } from './pgbench.js';
import { answers, type PgServer } from './postgres.js';
import { pollUntil } from './processes.js';
import type { PathName, WanResult } from './report.js';
import type { SshTunnel } from './ssh.js';

/** The matrix's options (without endpoints and clients: the case has its own) and the paths'. */
export interface WanOptions extends Omit<MatrixOptions, 'endpoints' | 'clients'> {
  readonly rttMs: number;
  readonly hoop: Hoop;
  /** The no-policy connection (its own `hoop connect` already runs on loopback). */
  readonly connection: string;
  /** The ssh -L path's tunnel, when it runs. */
  readonly ssh: SshTunnel | undefined;
  readonly target: PgServer;
  readonly database: string;
  /** Where the links' close functions go (run after every process has stopped). */
  readonly cleanups: (() => Promise<void>)[];
}

const READY_TIMEOUT_MS = 20_000;

export async function runWanCase(o: WanOptions): Promise<WanResult> {
  const oneWayMs = o.rttMs / 2;
  const via = async (port: number): Promise<number> => {
    const link = await startSlowLink({ host: '127.0.0.1', port }, oneWayMs);
    o.cleanups.push(link.close);
    return link.port;
  };
  const local = (port: number): Endpoint => loopback(port, o.target.user, o.database);

  const endpoints = new Map<PathName, Endpoint>();
  endpoints.set('direct', local(await via(o.target.port)));
  if (o.ssh !== undefined) {
    endpoints.set('ssh', local(await o.ssh.forwardVia(await via(o.ssh.sshdPort), 'ssh (wan)')));
  }
  const broker = new URL(o.hoop.adminEnv['HOOP_BROKER_URL'] ?? '');
  const brokerLink = await via(Number(broker.port));
  const far = await connectVia(
    o.hoop,
    o.connection,
    `http://127.0.0.1:${brokerLink}`,
    `connect ${o.connection} (wan)`,
  );
  endpoints.set('hoop', local(far.port));
  const native = nativeEndpoint(o.hoop, o.connection, o.database);
  endpoints.set('hoop-native', { ...native, port: await via(native.port) });
  for (const [path, endpoint] of endpoints) {
    await pollUntil(
      `an answer to select 1 through ${path} over the slow link`,
      () => answers(endpoint, o.database, o.env, o.signal),
      [],
      READY_TIMEOUT_MS,
      o.signal,
    );
  }
  o.log(
    `bench: wan: ${o.rttMs} ms round trip on the far leg of ${[...endpoints.keys()].join(', ')}`,
  );
  const connect = await runConnectMatrix({ ...o, endpoints, clients: [1] });
  await far.connect.stop();
  return { rttMs: o.rttMs, connect };
}
