/**
 * Group commit for small writes that arrive one by one (a grant row per session, a session's
 * end, a broker audit event): the first write goes to the store at once; writes that arrive
 * while it runs wait and then go together, in one statement. Nothing waits when the broker is
 * idle, and under a storm of connections the embedded store does one query per group instead
 * of one per write (each costs a few hundred µs of its thread however small it is).
 *
 * With `linger`, a group that would start within `busyWithinMs` of the previous one first waits
 * `ms`, so the writes of a steady stream of connections (psql or pgbench `-C` opening one after
 * the other, each a few ms apart) share a statement too (see BUSY_LINGER for what it saves).
 * An idle broker still writes at once.
 * The wait is measured on the monotonic clock, not the injected one: it decides when a write
 * happens, never what is written, and a test on a FakeClock must not have to advance time to
 * get its writes done.
 *
 * Order is kept. When a group fails, its writes are retried one by one, so each caller learns
 * about its own write only: one bad item never fails the others.
 */
import { performance } from 'node:perf_hooks';

export interface GroupCommitOptions {
  /** Largest group written by one flush (default 500). */
  readonly maxItems?: number;
  /** Wait `ms` before a group that starts within `busyWithinMs` of the previous one. */
  readonly linger?: { readonly ms: number; readonly busyWithinMs: number };
  /** Registers this group commit, so shutdown can `settle()` it before the store closes. */
  readonly settler?: WriteSettler;
}

interface Waiting<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Something with writes in flight that shutdown waits for. */
interface Settleable {
  settle(): Promise<void>;
}

/**
 * The linger of the broker's own writes (grant rows, session ends, broker audit events). Each
 * group costs the broker's event loop too (building the statement, the store thread's round trip,
 * the audit chain): under `pgbench -C -c 1` through hoop connect (~55 connections a second on
 * a slow 2-core machine), 100 ms instead of 25 ms took the broker thread from 5.1–5.4 to
 * 3.1–3.4 ms of CPU per connection, the store thread from 3.5–3.8 to 2.9–3.2 ms, and the
 * connection latency from 17.8–18.5 to 15.3–16.6 ms. What it delays, only while busy, is
 * bookkeeping no session waits for (a session grant's row: the agent checks the JWT itself; a
 * session's end; the broker's audit events), and an API call that awaits such a write by up to
 * that long. Shutdown settles them.
 */
const BUSY_LINGER = { ms: 100, busyWithinMs: 200 } as const;

/** Options for the broker's own small writes: they linger when busy and settle with `settler`. */
export function brokerWrites(settler: WriteSettler | undefined): GroupCommitOptions {
  return { linger: BUSY_LINGER, settler };
}

/** The group commits of one store: `settle()` writes what they hold, lingering or not. */
export class WriteSettler {
  private readonly members = new Set<Settleable>();

  add(member: Settleable): void {
    this.members.add(member);
  }

  async settle(): Promise<void> {
    await Promise.all([...this.members].map((m) => m.settle()));
  }
}

export class GroupCommit<T> {
  private readonly waiting: Waiting<T>[] = [];
  private running: Promise<void> | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;
  private lingering: { timer: ReturnType<typeof setTimeout>; done: () => void } | undefined;

  constructor(
    private readonly write: (items: readonly T[]) => Promise<void>,
    private readonly options: GroupCommitOptions = {},
  ) {
    options.settler?.add(this);
  }

  /** Resolves once `item` is written (with the others of its group). */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Items not written yet (the running group included). */
  get pending(): number {
    return this.waiting.length;
  }

  /** Ends a linger now and resolves once everything added so far is written (or failed). */
  async settle(): Promise<void> {
    this.endLinger();
    while (this.running !== undefined) {
      await this.running;
      this.endLinger();
    }
  }

  private endLinger(): void {
    const lingering = this.lingering;
    if (lingering === undefined) return;
    this.lingering = undefined;
    clearTimeout(lingering.timer);
    lingering.done();
  }

  private linger(ms: number): Promise<void> {
    return new Promise<void>((done) => {
      // Not unref'd: a process must not exit with a write still waiting here.
      const timer = setTimeout(() => this.endLinger(), ms);
      this.lingering = { timer, done };
    });
  }

  private async drain(): Promise<void> {
    try {
      const { linger } = this.options;
      if (linger !== undefined && performance.now() - this.lastStart < linger.busyWithinMs) {
        await this.linger(linger.ms);
      }
      while (this.waiting.length > 0) {
        this.lastStart = performance.now();
        const group = this.waiting.splice(0, this.options.maxItems ?? 500);
        try {
          await this.write(group.map((w) => w.item));
          for (const w of group) w.resolve();
        } catch (err) {
          if (group.length === 1) {
            group[0]?.reject(err);
            continue;
          }
          for (const w of group) {
            try {
              await this.write([w.item]);
              w.resolve();
            } catch (one) {
              w.reject(one);
            }
          }
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
