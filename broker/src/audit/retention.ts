/**
 * Audit retention (HOOP_AUDIT_RETENTION, e.g. `90d`; unset keeps everything): a sweeper that
 * periodically deletes rows older than the period and re-anchors the chain (store/audit.ts
 * `sweepAudit`), so `hoop audit verify` still checks every row that is left.
 */
import { type Clock, HoopError, type Logger, type TimerHandle } from '@hoop/shared';
import { sweepAudit } from '../store/audit.js';
import type { StoreContext } from '../store/context.js';

const UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** `90d`, `12h`, `30m`, `45s`, `2w` → ms; `forever`/`0`/empty → undefined (keep forever). */
export function parseRetention(value: string | undefined): number | undefined {
  const text = (value ?? '').trim();
  if (text === '' || text === '0' || text === 'forever') return undefined;
  const match = /^(\d+)\s*([smhdw])$/.exec(text);
  if (match === null) {
    throw new HoopError('USAGE', `HOOP_AUDIT_RETENTION "${text}" is not a duration like 90d`, {
      hint: 'Use a number and a unit: s, m, h, d or w (e.g. 90d), or leave it unset to keep everything.',
    });
  }
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}

export interface AuditConfig {
  /** Keep rows this long; undefined keeps everything. */
  readonly retentionMs: number | undefined;
  /** How often the sweeper runs. */
  readonly sweepIntervalMs: number;
  /** Store recordings as files here instead of in the database (HOOP_RECORDINGS_DIR). */
  readonly recordingsDir: string | undefined;
}

export function auditConfigFromEnv(env: Readonly<Record<string, string | undefined>>): AuditConfig {
  return {
    retentionMs: parseRetention(env['HOOP_AUDIT_RETENTION']),
    sweepIntervalMs: 60 * 60_000,
    recordingsDir: env['HOOP_RECORDINGS_DIR'] || undefined,
  };
}

export interface RetentionSweeper {
  /** Runs one sweep now (also what the timer does). */
  sweep(): Promise<number>;
  stop(): void;
}

export function startRetentionSweeper(options: {
  ctx: StoreContext;
  retentionMs: number;
  intervalMs: number;
  clock: Clock;
  logger: Logger;
}): RetentionSweeper {
  let timer: TimerHandle | undefined;
  let stopped = false;
  const sweep = async (): Promise<number> => {
    const before = new Date(options.clock.now() - options.retentionMs);
    const { deleted } = await sweepAudit(options.ctx, before);
    if (deleted > 0)
      options.logger.info('audit retention: deleted old rows and re-anchored the chain', {
        deleted,
        before: before.toISOString(),
      });
    return deleted;
  };
  const schedule = (delay: number) => {
    if (stopped) return;
    timer = options.clock.setTimeout(() => {
      sweep()
        .catch((err) => options.logger.error('audit retention sweep failed', { error: err }))
        .finally(() => schedule(options.intervalMs));
    }, delay);
    timer.unref?.();
  };
  schedule(Math.min(options.intervalMs, 5_000));
  return {
    sweep,
    stop: () => {
      stopped = true;
      if (timer !== undefined) options.clock.clearTimeout(timer);
    },
  };
}
