/**
 * Scale: N idle Postgres sessions through one `hoop connect`, with the broker's, the agent's and
 * that connect's RSS and open fds before, while idle, and after closing them.
 *
 * The target is the bench's fake PostgreSQL (fake-postgres.ts), not the machine's: its
 * max_connections (usually 100) cannot hold 1,000 backends, and a pooler in between would add
 * its own memory to what we measure. The connection keeps hoop's default policy (recording on,
 * no guardrails or masking), the one a new connection gets.
 */

import { performance } from 'node:perf_hooks';
import { IDLE_COLLECTOR_DEFAULTS } from '@hoop/shared';
import { type IdleSession, openIdleSession, startFakePostgres } from './fake-postgres.js';
import { addConnection, type Hoop } from './hoop.js';
import type { ScaleResult } from './report.js';
import { type ProcSample, sampleAll } from './sampling.js';

/** Sessions opened at once: enough to be quick, few enough not to look like a SYN flood. */
const CONCURRENCY = 50;
const OPEN_TIMEOUT_MS = 30_000;
const SETTLE_MS = 2000;
/**
 * How long sessions sit idle before "idle" is sampled: two of the idle collector's intervals
 * and a little, so each process has looked at an idle loop at least once (shared's
 * IdleCollector gives a burst's garbage back then). "Just opened" is sampled after SETTLE_MS.
 */
const IDLE_MS = 2 * IDLE_COLLECTOR_DEFAULTS.intervalMs + SETTLE_MS;

export interface ScaleOptions {
  /** Which store `hoop`'s broker runs on (reported with the numbers). */
  readonly store: ScaleResult['store'];
  readonly sessions: number;
  readonly user: string;
  readonly log: (line: string) => void;
}

export async function runScaleCase(hoop: Hoop, o: ScaleOptions): Promise<ScaleResult> {
  const fake = await startFakePostgres();
  const sessions: IdleSession[] = [];
  try {
    const conn = await addConnection(
      hoop,
      'bench-idle',
      { host: '127.0.0.1', port: fake.port, user: o.user },
      'idle',
    );
    const pids = { broker: hoop.broker.pid, agent: hoop.agent.pid, connect: conn.connect.pid };
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const settle = () => wait(SETTLE_MS);
    // Start-up and connection set-up leave garbage too: the processes get the same idle time
    // before "before" as the sessions get before "idle".
    await wait(IDLE_MS);
    const before = await sampleAll(pids);

    o.log(`bench: scale: opening ${o.sessions} idle sessions through hoop connect…`);
    const started = performance.now();
    let next = 0;
    let firstError: string | undefined;
    const worker = async () => {
      while (next < o.sessions && firstError === undefined) {
        next += 1;
        try {
          sessions.push(
            await openIdleSession('127.0.0.1', conn.port, o.user, 'idle', OPEN_TIMEOUT_MS),
          );
        } catch (err) {
          firstError ??= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const openSeconds = (performance.now() - started) / 1000;
    const opened = sessions.length;
    if (firstError !== undefined)
      o.log(`bench: scale: stopped at ${sessions.length} sessions: ${firstError}`);
    await settle();
    const justOpened = await sampleAll(pids);
    await wait(IDLE_MS - SETTLE_MS);
    const idle = await sampleAll(pids);
    o.log(
      `bench: scale: ${sessions.length} sessions open (${fake.sessions()} at the target) in ${openSeconds.toFixed(1)} s`,
    );

    for (const s of sessions.splice(0)) s.close();
    await settle();
    const after = await sampleAll(pids);
    await conn.connect.stop();

    const processes: ScaleResult['processes'] = {};
    for (const name of Object.keys(pids)) {
      processes[name] = {
        ...pick('before', before[name]),
        ...pick('justOpened', justOpened[name]),
        ...pick('idle', idle[name]),
        ...pick('after', after[name]),
      };
    }
    return {
      store: o.store,
      sessions: o.sessions,
      opened,
      openSeconds,
      target: 'fake PostgreSQL in the bench, default policy',
      idleSeconds: IDLE_MS / 1000,
      processes,
    };
  } finally {
    for (const s of sessions) s.close();
    await fake.close();
  }
}

function pick<K extends string>(
  key: K,
  value: ProcSample | undefined,
): Partial<Record<K, ProcSample>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, ProcSample>);
}
