/**
 * Autovacuum for the embedded store. PGlite runs PostgreSQL in single-user mode, which has no
 * autovacuum: every UPDATE and DELETE (a session ending, a token's last use, the audit retention
 * sweep) leaves dead tuples that are never reclaimed, and tables are never analyzed. This runs,
 * periodically, what autovacuum would: `VACUUM (ANALYZE)` for a table whose dead tuples exceed
 * 50 + 20 % of its live ones, `ANALYZE` for one whose changes since the last analyze exceed
 * 50 + 10 %. One table at a time, never VACUUM FULL: PGlite has one connection, and every other
 * query waits while one runs. On PostgreSQL (HOOP_DATABASE_URL) it does nothing.
 */
import type { Clock, Logger, TimerHandle } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import { guard, resultRows } from './context.js';
import type { Database } from './database.js';

/** How often the tables are checked (autovacuum_naptime is 1 min; the broker's tables are small). */
export const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

/** PostgreSQL's autovacuum defaults: base threshold and scale factor (of live tuples). */
const VACUUM_THRESHOLD = 50;
const VACUUM_SCALE = 0.2;
const ANALYZE_THRESHOLD = 50;
const ANALYZE_SCALE = 0.1;

/** What one run did: the tables vacuumed (and analyzed), analyzed only, and failed. */
export interface MaintenanceRun {
  readonly vacuumed: readonly string[];
  readonly analyzed: readonly string[];
  readonly failed: readonly string[];
}

export interface StoreMaintenance {
  /** Checks every table now and vacuums/analyzes those due (also what the timer does). */
  runOnce(): Promise<MaintenanceRun>;
  stop(): void;
}

interface TableStats {
  readonly relname: string;
  readonly n_live_tup: number | string;
  readonly n_dead_tup: number | string;
  readonly n_mod_since_analyze: number | string;
}

type Action = 'vacuum' | 'analyze';

const NOTHING: MaintenanceRun = { vacuumed: [], analyzed: [], failed: [] };

/** What autovacuum would do to this table now, if anything. */
export function maintenanceDue(stats: {
  readonly live: number;
  readonly dead: number;
  readonly modifiedSinceAnalyze: number;
}): Action | undefined {
  if (stats.dead > VACUUM_THRESHOLD + VACUUM_SCALE * stats.live) return 'vacuum';
  if (stats.modifiedSinceAnalyze > ANALYZE_THRESHOLD + ANALYZE_SCALE * stats.live) return 'analyze';
  return undefined;
}

/** `name` as a quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function readTableStats(database: Database): Promise<TableStats[]> {
  // A backend flushes its table counters at most once a second, when idle; read fresh ones.
  await database.db.execute(sql`select pg_stat_force_next_flush()`);
  const result = await database.db.execute(sql`
    select relname, n_live_tup, n_dead_tup, n_mod_since_analyze
    from pg_stat_user_tables where schemaname = 'public' order by relname`);
  return resultRows<TableStats>(result);
}

async function maintainTable(database: Database, table: string, action: Action): Promise<void> {
  const target = `public.${quoteIdentifier(table)}`;
  const statement = action === 'vacuum' ? `VACUUM (ANALYZE) ${target}` : `ANALYZE ${target}`;
  await database.db.execute(sql.raw(statement));
}

/**
 * Starts the embedded store's maintenance: a first run shortly after start, then one every
 * `intervalMs`. The timer is unref'd; failures are logged, never thrown out of it.
 */
export function startStoreMaintenance(options: {
  database: Database;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
}): StoreMaintenance {
  const { database, clock, logger } = options;
  if (database.kind !== 'pglite') {
    return { runOnce: () => Promise.resolve(NOTHING), stop: () => {} };
  }
  const intervalMs = options.intervalMs ?? MAINTENANCE_INTERVAL_MS;
  let timer: TimerHandle | undefined;
  let stopped = false;
  let running: Promise<MaintenanceRun> | undefined;

  const run = async (): Promise<MaintenanceRun> => {
    const tables = await guard('read table statistics', () => readTableStats(database));
    const done = { vacuumed: [] as string[], analyzed: [] as string[], failed: [] as string[] };
    for (const row of tables) {
      if (stopped) break;
      const live = Number(row.n_live_tup);
      const dead = Number(row.n_dead_tup);
      const action = maintenanceDue({
        live,
        dead,
        modifiedSinceAnalyze: Number(row.n_mod_since_analyze),
      });
      if (action === undefined) continue;
      const started = performance.now();
      try {
        await maintainTable(database, row.relname, action);
      } catch (err) {
        done.failed.push(row.relname);
        logger.warn('store maintenance: table failed', { table: row.relname, action, error: err });
        continue;
      }
      (action === 'vacuum' ? done.vacuumed : done.analyzed).push(row.relname);
      logger.debug(`store maintenance: ${action === 'vacuum' ? 'vacuumed' : 'analyzed'} table`, {
        table: row.relname,
        live,
        dead,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    }
    return done;
  };
  const runOnce = (): Promise<MaintenanceRun> => {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  };
  const schedule = (delay: number): void => {
    if (stopped) return;
    timer = clock.setTimeout(() => {
      runOnce()
        .catch((err) => logger.warn('store maintenance failed', { error: err }))
        .finally(() => schedule(intervalMs));
    }, delay);
    timer.unref?.();
  };
  schedule(Math.min(intervalMs, 60_000));
  return {
    runOnce,
    stop: () => {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
  };
}
