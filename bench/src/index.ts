/**
 * `npm run bench`: pgbench -S against the local PostgreSQL, directly and through `hoop connect`
 * (real broker, agent and connect processes), alternating the two paths round by round. Prints
 * a markdown table of median TPS per path and the ratio hoop/direct, the RSS of the hoop
 * processes, and writes bench/results/latest.json. Skips (exit 0) when PostgreSQL is not there.
 *
 * Everything it starts — processes, the hoop_bench database, a temp dir — is removed at the end,
 * also on failure and on Ctrl-C (a second Ctrl-C kills the services at once).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchError, BenchErrorCode } from './errors.js';
import { startHoopPath } from './hoop.js';
import { type BenchOptions, parseOptions, USAGE } from './options.js';
import { type Endpoint, type PgbenchSummary, runPgbench } from './pgbench.js';
import { createBenchDatabase, dropDatabase, type PgServer, probe } from './postgres.js';
import { type Env, Services } from './processes.js';
import {
  type BenchResults,
  formatTps,
  HOOP_PROCESSES,
  type HoopProcess,
  PATHS,
  type PathName,
  pathResult,
  ratio,
  renderReport,
  writeResults,
} from './report.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const TARGET: PgServer = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const DATABASE = 'hoop_bench';

const log = (line: string) => process.stderr.write(`${line}\n`);

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
  const services = new Services({ forwardStderr: options.verbose });
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts === 1) {
      log(`\nbench: ${signal}, stopping and cleaning up (again to kill at once)…`);
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

  // Both paths without TLS: the hoop listener speaks plain TCP on loopback, so must direct.
  const pgEnv: Env = { ...env, PGSSLMODE: 'disable' };
  let tmpDir: string | undefined;
  let databaseTouched = false;
  try {
    const found = await probe(TARGET, pgEnv, abort.signal);
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
    process.stdout.write(
      `# hoop bench: pgbench -S, direct vs through hoop connect\n\n` +
        `Select-only pgbench (${options.clients} clients, ${options.threads} threads, scale ${options.scale}), ` +
        `${options.durationS} s per run, ${options.rounds} runs per path, alternating direct/hoop.\n` +
        `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}, PostgreSQL ${found.version} at ${TARGET.host}:${TARGET.port}.\n` +
        `Everything shares these CPUs: pgbench, PostgreSQL and the three hoop processes.\n\n`,
    );

    log(`bench: creating database ${DATABASE} (pgbench -i -s ${options.scale})…`);
    databaseTouched = true;
    await createBenchDatabase(TARGET, DATABASE, options.scale, pgEnv, abort.signal);

    log('bench: starting hoop (broker, agent, connect)…');
    tmpDir = await mkdtemp(join(tmpdir(), 'hoop-bench-'));
    const hoop = await startHoopPath(services, {
      repoRoot: REPO_ROOT,
      tmpDir,
      target: TARGET,
      database: DATABASE,
      env,
      signal: abort.signal,
    });
    const endpoints: Record<PathName, Endpoint> = {
      direct: { ...TARGET, database: DATABASE },
      hoop: { host: '127.0.0.1', port: hoop.port, user: TARGET.user, database: DATABASE },
    };

    const runs: Record<PathName, PgbenchSummary[]> = { direct: [], hoop: [] };
    const rssKiB: Record<HoopProcess, (number | null)[]> = { broker: [], agent: [], connect: [] };
    for (let round = 1; round <= options.rounds; round++) {
      for (const path of PATHS) {
        const summary = await runPgbench({
          endpoint: endpoints[path],
          clients: options.clients,
          threads: options.threads,
          durationS: options.durationS,
          env: pgEnv,
          signal: abort.signal,
        });
        runs[path].push(summary);
        let rss = '';
        if (path === 'hoop') {
          for (const name of HOOP_PROCESSES) rssKiB[name].push((await hoop[name].rssKiB()) ?? null);
          rss = `  (RSS MiB: ${HOOP_PROCESSES.map((n) => `${n} ${mib(rssKiB[n].at(-1))}`).join(', ')})`;
        }
        log(
          `bench: round ${round}/${options.rounds} ${path.padEnd(6)} ${formatTps(summary.tps).padStart(8)} tps${rss}`,
        );
      }
    }

    const paths = { direct: pathResult(runs.direct), hoop: pathResult(runs.hoop) };
    const results: BenchResults = {
      date: new Date().toISOString(),
      workload: {
        command: `pgbench -n -S -c ${options.clients} -j ${options.threads} -T ${options.durationS}`,
        durationS: options.durationS,
        rounds: options.rounds,
        clients: options.clients,
        threads: options.threads,
        scale: options.scale,
      },
      machine,
      postgres: { version: found.version, address: `${TARGET.host}:${TARGET.port}` },
      paths,
      ratios: { hoop: ratio(paths.hoop.median, paths.direct.median) },
      rssKiB,
    };
    process.stdout.write(`${renderReport(results)}\n`);
    const file = await writeResults(RESULTS_DIR, results);
    log(`\nbench: wrote ${file}`);
    return 0;
  } catch (err) {
    if (abort.signal.aborted) {
      log('bench: interrupted');
      return 130;
    }
    const code = err instanceof BenchError ? err.code : 'UNEXPECTED';
    log(`bench failed [${code}]: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof BenchError && err.code === BenchErrorCode.usage ? 2 : 1;
  } finally {
    await services.stopAll();
    if (databaseTouched) {
      await dropDatabase(TARGET, DATABASE, pgEnv).catch((err: Error) =>
        log(`bench: could not drop database ${DATABASE}: ${err.message}`),
      );
    }
    if (tmpDir !== undefined) await rm(tmpDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killOnExit);
  }
}

function mib(kib: number | null | undefined): string {
  return kib === null || kib === undefined ? 'n/a' : (kib / 1024).toFixed(0);
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
