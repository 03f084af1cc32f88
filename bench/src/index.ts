/**
 * `npm run bench`: the local PostgreSQL measured side by side through six paths — direct,
 * pgbouncer (session mode), ssh -L through our own sshd, hoop without policy (raw relay) through
 * `hoop connect` and straight through the broker's native Postgres endpoint, and hoop with
 * guardrails + masking + recording — alternating paths within every round:
 * pgbench -S (simple/prepared, several client counts, p50/p99 from -l logs), connection setup
 * (-C), COPY out; connection setup again with a slow link (--rtt) on each path's far leg
 * (wan), and with the broker's store behind a slow link (store); then hoop alone: idle sessions
 * at scale and a soak that fails on growth.
 * Prints markdown and ratio lines, writes bench/results/latest.json. Skips (exit 0) when
 * PostgreSQL is not there; skips a path, with the reason, when its tools cannot be installed.
 *
 * Everything it starts — processes, the hoop_bench database, a temp dir — is removed at the end,
 * also on failure and on Ctrl-C (a second Ctrl-C kills the services at once).
 */

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COPY_MIN_ROUNDS, runCopyCase } from './copy.js';
import { BenchError, BenchErrorCode } from './errors.js';
import { addConnection, nativeEndpoint, startAgent, startHoop } from './hoop.js';
import { inspectorUrl } from './inspector.js';
import { runConnectMatrix, runSelectMatrix } from './matrix.js';
import { type BenchOptions, parseOptions, USAGE } from './options.js';
import { type Endpoint, loopback } from './pgbench.js';
import { startPgbouncer } from './pgbouncer.js';
import { ALL_POLICIES, NO_POLICY } from './policies.js';
import {
  answers,
  createBenchDatabase,
  createEmptyDatabase,
  dropDatabase,
  type PgServer,
  probe,
} from './postgres.js';
import { type Env, pollUntil, Services } from './processes.js';
import { RELAY_HOPS, startRelayChain } from './relay.js';
import {
  type BenchResults,
  type ConnectCell,
  type CopyCell,
  checkTargets,
  collectRatios,
  PATHS,
  type PathName,
  type PgbenchCell,
  renderReport,
  type ScaleResult,
  type SoakResult,
  type StoreLatencyResult,
  type WanResult,
  writeResults,
} from './report.js';
import { runScaleCase } from './scale.js';
import { runSoak } from './soak.js';
import { type SshTunnel, startSshTunnel } from './ssh.js';
import { runStoreLatencyCase } from './store-latency.js';
import { ensureTools } from './tools.js';
import { runWanCase } from './wan.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const TARGET: PgServer = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const DATABASE = 'hoop_bench';
/** The second scale run's broker store (dropped at the end). */
const STORE_DATABASE = 'hoop_bench_store';
/** The store case's broker store, behind a slow link (dropped at the end). */
const FAR_STORE_DATABASE = 'hoop_bench_far_store';

const log = (line: string) => process.stderr.write(`${line}\n`);
/** The agent of the `hoop-warm` path (HOOP_PG_WARM=1); the setup case only. */
const WARM_AGENT = 'bench-warm';

/** The same endpoints in report order (PATHS). */
function inPathOrder(endpoints: ReadonlyMap<PathName, Endpoint>): Map<PathName, Endpoint> {
  const ordered = new Map<PathName, Endpoint>();
  for (const path of PATHS) {
    const endpoint = endpoints.get(path);
    if (endpoint !== undefined) ordered.set(path, endpoint);
  }
  return ordered;
}

async function main(argv: readonly string[], env: Env): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseOptions(argv, env);
  } catch (err) {
    log(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const abort = new AbortController();
  const { signal } = abort;
  const services = new Services({ forwardStderr: options.verbose });
  let interrupts = 0;
  const onSignal = (name: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts === 1) {
      log(`\nbench: ${name}, stopping and cleaning up (again to kill at once)…`);
      abort.abort();
    } else {
      services.killAllSync();
      process.exit(130);
    }
  };
  const killOnExit = () => services.killAllSync();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killOnExit);

  // Every path without TLS: hoop connect and the broker's native endpoint (no certificate) speak
  // plain TCP on loopback, so must the others.
  const pgEnv: Env = { ...env, PGSSLMODE: 'disable' };
  const cleanups: (() => Promise<void>)[] = [];
  let databaseTouched = false;
  let storeDatabaseTouched = false;
  let farStoreDatabaseTouched = false;
  try {
    const found = await probe(TARGET, pgEnv, signal);
    if (!found.ok) {
      process.stdout.write(
        `bench skipped: ${found.reason}\nIt needs psql and pgbench on PATH and PostgreSQL on ${TARGET.host}:${TARGET.port} accepting user ${TARGET.user} without a password (trust).\n`,
      );
      return 0;
    }
    const machine = {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      platform: `${platform()} ${release()}`,
      totalMemMiB: Math.round(totalmem() / 2 ** 20),
    };
    const wants = (c: BenchOptions['only'][number]) => options.only.includes(c);
    const comparing = wants('pgbench') || wants('copy');
    /** The paths on loopback (pgbench, copy), or the same paths over a slow link (wan). */
    const paths = comparing || wants('wan');
    /** The cases whose clients read the bench database. */
    const reading = paths || wants('store') || wants('soak');
    process.stdout.write(
      `# hoop bench${options.quick ? ' (--quick)' : ''}: ${options.only.join(', ')}\n\n` +
        `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.totalMemMiB} MiB, node ${machine.node}, ${machine.platform}.\n` +
        `PostgreSQL ${found.version} at ${TARGET.host}:${TARGET.port}, database ${DATABASE} (pgbench scale ${options.scale}); no TLS on any path.\n` +
        `pgbench: ${options.durationS} s per run, ${options.rounds} rounds, paths alternating within each round; clients ${options.clients.join('/')}.\n` +
        'Everything shares these CPUs: clients, PostgreSQL, pgbouncer/sshd/ssh and the hoop processes.\n\n',
    );

    const tmpDir = await mkdtemp(join(tmpdir(), 'hoop-bench-'));
    cleanups.push(() => rm(tmpDir, { recursive: true, force: true }));
    if (reading) {
      log(`bench: creating database ${DATABASE} (pgbench -i -s ${options.scale})…`);
      databaseTouched = true;
      await createBenchDatabase(TARGET, DATABASE, options.scale, pgEnv, signal);
    }

    const skipped: { what: string; reason: string }[] = [
      {
        what: 'SSH through hoop',
        reason: 'hoop has no SSH engine yet (ssh -L is measured as a baseline path)',
      },
    ];
    const endpoints = new Map<PathName, Endpoint>([['direct', { ...TARGET, database: DATABASE }]]);
    const local = (port: number): Endpoint => loopback(port, TARGET.user, DATABASE);
    const optional = async (what: string, start: () => Promise<void>) => {
      try {
        await start();
      } catch (err) {
        if (signal.aborted) throw err;
        skipped.push({
          what,
          reason: err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err),
        });
        log(`bench: skipping ${what}: ${String((err as Error).message ?? err).split('\n')[0]}`);
      }
    };

    let ssh: SshTunnel | undefined;
    if (comparing) {
      await optional('pgbouncer path', async () => {
        const tools = await ensureTools(
          [{ binary: 'pgbouncer', aptPackage: 'pgbouncer' }],
          pgEnv,
          signal,
          log,
        );
        if (!tools.ok) throw new Error(tools.reason);
        const binary = tools.paths['pgbouncer'] as string;
        endpoints.set(
          'pgbouncer',
          local(
            await startPgbouncer(services, {
              binary,
              tmpDir,
              target: TARGET,
              database: DATABASE,
              env: pgEnv,
              signal,
            }),
          ),
        );
      });
    }
    if (paths) {
      await optional('ssh -L path', async () => {
        const tools = await ensureTools(
          [
            { binary: 'sshd', aptPackage: 'openssh-server' },
            { binary: 'ssh', aptPackage: 'openssh-client' },
            { binary: 'ssh-keygen', aptPackage: 'openssh-client' },
          ],
          pgEnv,
          signal,
          log,
        );
        if (!tools.ok) throw new Error(tools.reason);
        const paths = {
          sshd: tools.paths['sshd'] as string,
          ssh: tools.paths['ssh'] as string,
          'ssh-keygen': tools.paths['ssh-keygen'] as string,
        };
        ssh = await startSshTunnel(services, {
          paths,
          tmpDir,
          target: TARGET,
          database: DATABASE,
          env: pgEnv,
          signal,
        });
        cleanups.push(ssh.cleanup);
        if (comparing) endpoints.set('ssh', local(ssh.port));
      });
    }

    if (comparing) {
      await optional('bare Node relay path', async () => {
        endpoints.set(
          'relay',
          local(
            await startRelayChain(services, {
              target: TARGET,
              hops: RELAY_HOPS,
              env,
              signal,
            }),
          ),
        );
      });
    }

    log('bench: starting hoop (broker, agent, one hoop connect per connection)…');
    const hoop = await startHoop(services, {
      repoRoot: REPO_ROOT,
      tmpDir,
      env,
      signal,
      inspect: wants('soak'),
    });
    let policed: Awaited<ReturnType<typeof addConnection>> | undefined;
    let raw: Awaited<ReturnType<typeof addConnection>> | undefined;
    if (paths) raw = await addConnection(hoop, 'bench-raw', TARGET, DATABASE, NO_POLICY);
    if (comparing && raw !== undefined) {
      endpoints.set('hoop', local(raw.port));
      endpoints.set('hoop-native', nativeEndpoint(hoop, raw.name, DATABASE));
    }
    if (comparing || wants('soak')) {
      policed = await addConnection(hoop, 'bench-policy', TARGET, DATABASE, ALL_POLICIES);
      endpoints.set('hoop-policy', local(policed.port));
    }
    if (comparing && raw !== undefined && policed !== undefined) {
      endpoints.set('hoop-direct', nativeEndpoint(hoop, raw.name, DATABASE, true));
      endpoints.set('hoop-direct-policy', nativeEndpoint(hoop, policed.name, DATABASE, true));
    }
    // Connection setup only: `hoop` served by a second agent that keeps a warm target connection.
    const setupEndpoints = new Map(endpoints);
    if (comparing && wants('pgbench')) {
      await startAgent(hoop, WARM_AGENT, 'agent-warm', { HOOP_PG_WARM: '1' });
      const warm = await addConnection(hoop, 'bench-warm', TARGET, DATABASE, NO_POLICY, WARM_AGENT);
      setupEndpoints.set('hoop-warm', local(warm.port));
      await pollUntil(
        'an answer to select 1 through hoop-warm',
        () => answers(local(warm.port), DATABASE, pgEnv, signal),
        [],
        15_000,
        signal,
      );
    }
    // The probe reads the bench database, which only the cases that use it create.
    for (const [path, endpoint] of comparing || wants('soak') ? endpoints : []) {
      await pollUntil(
        `an answer to select 1 through ${path}`,
        () => answers(endpoint, DATABASE, pgEnv, signal),
        [],
        15_000,
        signal,
      );
    }
    log(`bench: paths ready: ${[...endpoints.keys()].join(', ')}`);

    const matrix = {
      endpoints: comparing ? endpoints : new Map<PathName, Endpoint>(),
      clients: options.clients,
      rounds: options.rounds,
      durationS: options.durationS,
      cpus: machine.cpus,
      logDir: join(tmpDir, 'pgbench-logs'),
      env: pgEnv,
      signal,
      log,
    };
    let pgbench: PgbenchCell[] = [];
    let connect: ConnectCell[] = [];
    let copy: CopyCell[] = [];
    let wan: WanResult | null = null;
    let store: StoreLatencyResult | null = null;
    let scale: ScaleResult | null = null;
    let scaleOnPostgres: ScaleResult | null = null;
    let soak: SoakResult | null = null;
    if (wants('pgbench')) {
      pgbench = await runSelectMatrix(matrix);
      connect = await runConnectMatrix({ ...matrix, endpoints: inPathOrder(setupEndpoints) });
    }
    if (wants('copy')) {
      copy = await runCopyCase({
        endpoints,
        megabytes: options.copyMB,
        rounds: Math.max(options.rounds, COPY_MIN_ROUNDS),
        env: pgEnv,
        signal,
        log,
      });
    }
    if (wants('wan') && raw !== undefined) {
      wan = await runWanCase({
        rttMs: options.rttMs,
        hoop,
        connection: raw.name,
        ssh,
        target: TARGET,
        database: DATABASE,
        rounds: options.rounds,
        durationS: options.durationS,
        cpus: machine.cpus,
        logDir: join(tmpDir, 'pgbench-logs-wan'),
        env: pgEnv,
        signal,
        log,
        cleanups,
      });
    }
    if (wants('store')) {
      await optional('store case', async () => {
        await createEmptyDatabase(TARGET, FAR_STORE_DATABASE, pgEnv, signal);
        farStoreDatabaseTouched = true;
        store = await runStoreLatencyCase({
          rttMs: options.rttMs,
          services,
          repoRoot: REPO_ROOT,
          tmpDir: join(tmpDir, 'far-store'),
          hoopEnv: env,
          target: TARGET,
          database: DATABASE,
          storeDatabase: FAR_STORE_DATABASE,
          cleanups,
          rounds: options.rounds,
          durationS: options.durationS,
          cpus: machine.cpus,
          logDir: join(tmpDir, 'pgbench-logs-store'),
          env: pgEnv,
          signal,
          log,
        });
      });
    }
    if (wants('scale')) {
      scale = await runScaleCase(hoop, {
        store: 'embedded',
        sessions: options.sessions,
        user: TARGET.user,
        log,
      });
      // The same sessions with the broker on PostgreSQL: its memory without PGlite's.
      await optional('scale with the broker on a PostgreSQL store', async () => {
        await createEmptyDatabase(TARGET, STORE_DATABASE, pgEnv, signal);
        storeDatabaseTouched = true;
        const dir = join(tmpDir, 'postgres-store');
        await mkdir(dir);
        log('bench: scale: starting a second hoop whose broker stores in PostgreSQL…');
        const onPostgres = await startHoop(services, {
          repoRoot: REPO_ROOT,
          tmpDir: dir,
          env,
          signal,
          databaseUrl: `postgres://${TARGET.user}@${TARGET.host}:${TARGET.port}/${STORE_DATABASE}`,
          label: ' (postgres store)',
        });
        try {
          scaleOnPostgres = await runScaleCase(onPostgres, {
            store: 'postgres',
            sessions: options.sessions,
            user: TARGET.user,
            log,
          });
        } finally {
          await onPostgres.agent.stop();
          await onPostgres.broker.stop();
        }
      });
    }
    if (wants('soak') && policed !== undefined) {
      soak = await runSoak({
        endpoint: local(policed.port),
        pids: { broker: hoop.broker.pid, agent: hoop.agent.pid, connect: policed.connect.pid },
        inspectors: {
          broker: inspectorUrl(hoop.broker.stderrHead),
          agent: inspectorUrl(hoop.agent.stderrHead),
          connect: inspectorUrl(policed.connect.stderrHead),
        },
        seconds: options.soakS,
        cpus: machine.cpus,
        env: pgEnv,
        signal,
        log,
      });
    }

    const measured = { pgbench, connect, copy, scale, scaleOnPostgres };
    const results: BenchResults = {
      date: new Date().toISOString(),
      machine,
      postgres: { version: found.version, address: `${TARGET.host}:${TARGET.port}` },
      settings: { ...options, help: undefined, verbose: undefined, database: DATABASE },
      paths: [...endpoints.keys()],
      skipped,
      ...measured,
      wan,
      store,
      soak,
      ratios: collectRatios(measured),
      targets: checkTargets(measured),
    };
    process.stdout.write(`${renderReport(results)}\n`);
    const file = await writeResults(RESULTS_DIR, results);
    log(`\nbench: wrote ${file}`);
    if (soak !== null && soak.failures.length > 0) {
      log(
        `bench failed [${BenchErrorCode.soakGrowth}]: sustained growth during the soak:\n  ${soak.failures.join('\n  ')}`,
      );
      return 1;
    }
    return 0;
  } catch (err) {
    if (signal.aborted) {
      log('bench: interrupted');
      return 130;
    }
    const code = err instanceof BenchError ? err.code : 'UNEXPECTED';
    log(`bench failed [${code}]: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof BenchError && err.code === BenchErrorCode.usage ? 2 : 1;
  } finally {
    await services.stopAll();
    if (farStoreDatabaseTouched) {
      await dropDatabase(TARGET, FAR_STORE_DATABASE, pgEnv).catch((err: Error) =>
        log(`bench: could not drop database ${FAR_STORE_DATABASE}: ${err.message}`),
      );
    }
    if (storeDatabaseTouched) {
      await dropDatabase(TARGET, STORE_DATABASE, pgEnv).catch((err: Error) =>
        log(`bench: could not drop database ${STORE_DATABASE}: ${err.message}`),
      );
    }
    if (databaseTouched) {
      await dropDatabase(TARGET, DATABASE, pgEnv).catch((err: Error) =>
        log(`bench: could not drop database ${DATABASE}: ${err.message}`),
      );
    }
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: Error) => log(`bench: cleanup: ${err.message}`));
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killOnExit);
  }
}

main(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
