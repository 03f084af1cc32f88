/**
 * Gives memory back once a burst is over. hoop's processes start with a 64 MB initial old
 * generation (cli/bin/hoop.js) so that bulk relaying stays with the cheap young-generation
 * collector; the price is that garbage from a burst (1,000 sessions opening, a COPY) stays
 * resident, together with the young generation it grew, until the heap reaches that limit. V8
 * only shrinks a heap on its own after a full collection, so an idle broker kept ~60 MB more
 * than it used (bench/README.md, "Scale").
 *
 * Every `intervalMs` this looks at the thread's event loop and heap: when the loop was idle
 * (utilization under `maxUtilization` over the whole interval) and the heap has grown by at least
 * `growthBytes` since the last collection (or holds that much at all, the first time: start-up
 * leaves garbage too), it runs one full collection that also returns the young generation's
 * pages — what the inspector's "collect garbage" does, through an in-process inspector session
 * (no port is opened). A busy thread is never paused; a thread whose heap has not grown is never
 * collected twice. Each thread (the broker's store worker too) runs its own.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { type Clock, systemClock, type TimerHandle } from './clock.js';
import type { Logger } from './logger.js';

export interface IdleCollectorProbes {
  /** Event-loop utilization (0–1) since the previous call. */
  utilization(): number;
  /** The thread's heap: V8's total heap plus memory held by JavaScript objects outside it. */
  heapBytes(): number;
  /** Runs a full, memory-reducing collection. */
  collect(): Promise<void>;
}

export interface IdleCollectorOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How often the loop and heap are looked at (default 5 s). */
  readonly intervalMs?: number;
  /** The loop counts as idle under this utilization over one interval (default 0.05). */
  readonly maxUtilization?: number;
  /**
   * Heap growth since the last collection that makes one worth it (default 8 MiB). It was
   * 16 MiB until a broker's sessions made less garbage (shared session grants, statements built
   * once): 1,000 sessions then left its heap under that, and the broker idled at 144 MiB instead
   * of 138 MiB (bench `scale`).
   */
  readonly growthBytes?: number;
  /** Replaced in tests; the real ones read this thread's loop and heap. */
  readonly probes?: IdleCollectorProbes;
}

export const IDLE_COLLECTOR_DEFAULTS = {
  intervalMs: 5000,
  maxUtilization: 0.05,
  growthBytes: 8 * 1024 * 1024,
} as const;

export class IdleCollector {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly maxUtilization: number;
  private readonly growthBytes: number;
  private readonly probes: IdleCollectorProbes;
  private timer: TimerHandle | undefined;
  /**
   * The heap right after the last collection. It starts at zero, so the first idle look also
   * gives back what starting up left behind (migrations, the store's start, parsed modules).
   */
  private baseline = 0;
  private collecting = false;
  private stopped = false;
  private collections = 0;

  constructor(private readonly options: IdleCollectorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? IDLE_COLLECTOR_DEFAULTS.intervalMs;
    this.maxUtilization = options.maxUtilization ?? IDLE_COLLECTOR_DEFAULTS.maxUtilization;
    this.growthBytes = options.growthBytes ?? IDLE_COLLECTOR_DEFAULTS.growthBytes;
    if (!(this.intervalMs > 0) || !(this.growthBytes > 0)) {
      throw new RangeError('idle collector: intervalMs and growthBytes must be positive');
    }
    if (!(this.maxUtilization > 0 && this.maxUtilization < 1)) {
      throw new RangeError('idle collector: maxUtilization must be between 0 and 1');
    }
    this.probes = options.probes ?? threadProbes();
  }

  /** Starts looking; the timer never keeps the thread alive. */
  start(): this {
    if (this.timer === undefined && !this.stopped) {
      this.probes.utilization();
      this.schedule();
    }
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Collections run so far. */
  get count(): number {
    return this.collections;
  }

  /** One look: collects when the loop was idle and the heap has grown enough. */
  async check(): Promise<boolean> {
    if (this.collecting || this.stopped) return false;
    const utilization = this.probes.utilization();
    const heap = this.probes.heapBytes();
    // A heap that shrank on its own (V8 collected) becomes the new reference.
    if (heap < this.baseline) this.baseline = heap;
    if (utilization >= this.maxUtilization || heap - this.baseline < this.growthBytes) return false;
    this.collecting = true;
    const started = performance.now();
    try {
      await this.probes.collect();
      this.collections += 1;
      this.baseline = this.probes.heapBytes();
      this.options.logger?.debug('idle collection', {
        heapBefore: heap,
        heapAfter: this.baseline,
        ms: Math.round(performance.now() - started),
      });
      return true;
    } catch (err) {
      // Without an inspector (a Node.js built without one) there is nothing to fall back to.
      this.options.logger?.debug('idle collection unavailable', { error: (err as Error).message });
      this.stop();
      return false;
    } finally {
      this.collecting = false;
      // The collection itself must not count as the next interval's activity.
      this.probes.utilization();
    }
  }

  private schedule(): void {
    const timer = this.clock.setTimeout(() => {
      void this.check().finally(() => {
        if (!this.stopped) this.schedule();
      });
    }, this.intervalMs);
    timer.unref?.();
    this.timer = timer;
  }
}

/** Starts an idle collector for the calling thread. */
export function startIdleCollector(options: IdleCollectorOptions = {}): IdleCollector {
  return new IdleCollector(options).start();
}

/** The calling thread's own loop and heap, and a collection through its in-process inspector. */
export function threadProbes(): IdleCollectorProbes {
  let last = performance.eventLoopUtilization();
  return {
    utilization() {
      const now = performance.eventLoopUtilization();
      const delta = performance.eventLoopUtilization(now, last);
      last = now;
      return delta.utilization;
    },
    heapBytes() {
      const stats = getHeapStatistics();
      return stats.total_heap_size + stats.external_memory;
    },
    collect: collectThroughInspector,
  };
}

/**
 * A full collection of the calling thread through an in-process inspector session:
 * HeapProfiler.collectGarbage collects until nothing more is freed and shrinks the young
 * generation, which `global.gc()` (with --expose-gc) does not.
 */
export async function collectThroughInspector(): Promise<void> {
  // Imported here: a Node.js built without the inspector throws on import, and then only this
  // feature is missing.
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      session.post('HeapProfiler.collectGarbage', (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    session.disconnect();
  }
}
