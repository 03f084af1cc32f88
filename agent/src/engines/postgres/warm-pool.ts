/**
 * Warm target connections: logged-in, never-used connections to a target, kept so the next
 * session with the same target, credential and client parameters skips the target's own
 * connection start (TCP, fork of a backend, authentication, backend initialization — most of
 * what a new Postgres connection costs). Off unless the agent asks for it (HOOP_PG_WARM): each
 * warm connection is a backend on the target.
 *
 * A pool entry is keyed by everything that shapes the login — host, port, TLS mode, user,
 * database, every forwarded StartupMessage parameter, and the password (hashed, never kept) — so
 * a session only ever gets a connection identical to the one it would have opened. A connection
 * is only ever given to one session, and only before any client byte went to it.
 *
 *   session logged in ──► refill(key): dial + log in up to `perKey` spares in the background
 *   next session      ──► claim(key): a ready spare, else one still logging in, else none
 *
 * A spare is dropped when it has idled `idleMs`, when the target sends anything or closes it
 * (a restart, idle_session_timeout, pg_terminate_backend), and when the engine closes. A failing
 * refill is logged and not retried for `idleMs`: spares never cost a session anything.
 */
import { createHash } from 'node:crypto';
import type { Clock, ConnectionTarget, Logger } from '@hoop/shared';
import type { LoggedInTarget } from './login.js';
import { terminate } from './writer.js';

/** A spare is dropped on any of these: a byte from the target, its end, a close, an error. */
const WATCHED = ['data', 'end', 'close', 'error'] as const;

/** Keys remembered before empty ones are swept (clients choose parameters, so keys vary). */
const MAX_SLOTS = 1024;

export interface WarmPoolOptions {
  /** Spares kept per key (0 = the pool is off). */
  readonly perKey: number;
  /** Spares across all keys. */
  readonly maxTotal: number;
  /** How long a spare may wait for a session. */
  readonly idleMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** What a spare is opened with; the password is used for the login and not kept. */
export interface WarmSpec {
  readonly target: Pick<ConnectionTarget, 'host' | 'port' | 'tls' | 'user' | 'database'>;
  readonly password: string | undefined;
  readonly parameters: ReadonlyArray<readonly [string, string]>;
}

/** Dials and logs in one spare; rejects when it cannot. */
export type WarmOpener = (spec: WarmSpec, signal: AbortSignal) => Promise<LoggedInTarget>;

interface Ready {
  readonly conn: LoggedInTarget;
  /** Stops watching the spare (listeners, idle timer) and uncounts it. */
  readonly drop: () => void;
}

interface Pending {
  readonly promise: Promise<LoggedInTarget | undefined>;
  claimed: boolean;
}

interface Slot {
  readonly ready: Ready[];
  readonly pending: Pending[];
  /** No refill before this time (after a failed one). */
  quietUntil: number;
}

/** The key of the target and credential alone: does the pool hold anything for this target? */
export function warmTargetKey(spec: Pick<WarmSpec, 'target' | 'password'>): string {
  const { host, port, tls, user, database } = spec.target;
  return createHash('sha256')
    .update(JSON.stringify([host, port, tls, user, database, spec.password ?? null]))
    .digest('base64url');
}

/** The full key: target, credential and every StartupMessage parameter in order. */
export function warmKey(spec: WarmSpec): string {
  return `${warmTargetKey(spec)}:${createHash('sha256')
    .update(JSON.stringify(spec.parameters))
    .digest('base64url')}`;
}

export class WarmPool {
  private readonly slots = new Map<string, Slot>();
  /** Ready plus pending spares per target key. */
  private readonly perTarget = new Map<string, number>();
  private total = 0;
  private readonly closing = new AbortController();

  constructor(
    private readonly options: WarmPoolOptions,
    private readonly open: WarmOpener,
  ) {}

  get enabled(): boolean {
    return this.options.perKey > 0 && !this.closing.signal.aborted;
  }

  /** Spares ready or logging in. */
  get size(): number {
    return this.total;
  }

  /** True when a spare for this target and credential (any parameters) is ready or coming. */
  mayHave(targetKey: string): boolean {
    return (this.perTarget.get(targetKey) ?? 0) > 0;
  }

  /**
   * A spare for `spec`: a ready one, else one still logging in (it started before this session
   * and is never later than a dial started now). Undefined when there is none, it failed, or
   * `signal` aborted first (the spare is then closed when it arrives).
   */
  async claim(spec: WarmSpec, signal: AbortSignal): Promise<LoggedInTarget | undefined> {
    const slot = this.slots.get(warmKey(spec));
    if (slot === undefined) return undefined;
    const ready = slot.ready.shift();
    if (ready !== undefined) {
      ready.drop();
      return ready.conn;
    }
    const pending = slot.pending.find((p) => !p.claimed);
    if (pending === undefined || signal.aborted) return undefined;
    pending.claimed = true;
    return new Promise<LoggedInTarget | undefined>((resolve) => {
      let waiting = true;
      const onAbort = (): void => {
        waiting = false;
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      void pending.promise.then((conn) => {
        signal.removeEventListener('abort', onAbort);
        if (waiting) resolve(conn);
        else if (conn !== undefined) goodbye(conn);
      });
    });
  }

  /** Opens spares for `spec` in the background until `perKey` are ready or coming. */
  refill(spec: WarmSpec): void {
    if (!this.enabled) return;
    const key = warmKey(spec);
    const targetKey = warmTargetKey(spec);
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { ready: [], pending: [], quietUntil: 0 };
      this.slots.set(key, slot);
    }
    if (this.options.clock.now() < slot.quietUntil) return;
    const unclaimed = (s: Slot): number =>
      s.ready.length + s.pending.filter((p) => !p.claimed).length;
    while (unclaimed(slot) < this.options.perKey && this.total < this.options.maxTotal) {
      this.startSpare(key, targetKey, slot, spec);
    }
    this.forget(key, slot);
    if (this.slots.size > MAX_SLOTS) {
      for (const [k, sl] of this.slots) this.forget(k, sl);
    }
  }

  /** Closes every spare; spares still logging in are aborted. */
  close(): void {
    this.closing.abort();
    for (const slot of this.slots.values()) {
      for (const ready of slot.ready.splice(0)) {
        ready.drop();
        goodbye(ready.conn);
      }
    }
  }

  private startSpare(key: string, targetKey: string, slot: Slot, spec: WarmSpec): void {
    this.count(targetKey, +1);
    const pending: Pending = {
      claimed: false,
      promise: this.open(spec, this.closing.signal).then(
        (conn) => {
          remove(slot.pending, pending);
          if (pending.claimed) {
            this.count(targetKey, -1);
            return conn;
          }
          if (this.closing.signal.aborted) {
            this.count(targetKey, -1);
            goodbye(conn);
            return undefined;
          }
          this.keep(key, targetKey, slot, conn);
          return undefined;
        },
        (err: unknown) => {
          remove(slot.pending, pending);
          this.count(targetKey, -1);
          slot.quietUntil = this.options.clock.now() + this.options.idleMs;
          if (!this.closing.signal.aborted) {
            this.options.logger.info('could not open a warm target connection', {
              error: err instanceof Error ? err.message : String(err),
            });
          }
          this.forget(key, slot);
          return undefined;
        },
      ),
    };
    slot.pending.push(pending);
  }

  /** Holds a ready spare, watching it: any byte from the target or a close drops it. */
  private keep(key: string, targetKey: string, slot: Slot, conn: LoggedInTarget): void {
    const { socket } = conn;
    let entry: Ready | undefined;
    const discard = (): void => {
      if (entry === undefined || !slot.ready.includes(entry)) return;
      remove(slot.ready, entry);
      entry.drop();
      goodbye(conn);
      this.forget(key, slot);
    };
    const timer = this.options.clock.setTimeout(() => {
      this.options.logger.debug('warm target connection idle: closed');
      discard();
    }, this.options.idleMs);
    entry = {
      conn,
      drop: () => {
        this.options.clock.clearTimeout(timer);
        for (const event of WATCHED) socket.off(event, discard);
        socket.pause();
        this.count(targetKey, -1);
      },
    };
    for (const event of WATCHED) socket.on(event, discard);
    socket.resume();
    slot.ready.push(entry);
    if (conn.leftover.length > 0 || socket.destroyed) discard();
  }

  /** Drops an empty slot once its quiet time (after a failed refill) is over. */
  private forget(key: string, slot: Slot): void {
    const empty = slot.ready.length === 0 && slot.pending.length === 0;
    if (empty && slot.quietUntil <= this.options.clock.now()) this.slots.delete(key);
  }

  private count(targetKey: string, delta: number): void {
    this.total += delta;
    const next = (this.perTarget.get(targetKey) ?? 0) + delta;
    if (next <= 0) this.perTarget.delete(targetKey);
    else this.perTarget.set(targetKey, next);
  }
}

function remove<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}

/** Ends a spare politely (Terminate), so the target logs a normal disconnection. */
function goodbye(conn: LoggedInTarget): void {
  const { socket } = conn;
  socket.on('error', () => {});
  if (!socket.destroyed) socket.end(terminate());
  conn.socket.setTimeout(5_000, () => socket.destroy());
}
