/**
 * Group commit for small writes that arrive one by one (a grant row per session, a session's
 * end, a broker audit event): the first write goes to the store at once; writes that arrive
 * while it runs wait and then go together, in one statement. Nothing waits when the broker is
 * idle, and under a storm of connections the embedded store does one query per group instead
 * of one per write (each costs a few hundred µs of its thread however small it is).
 *
 * Order is kept. When a group fails, its writes are retried one by one, so each caller learns
 * about its own write only: one bad item never fails the others.
 */

export interface GroupCommitOptions {
  /** Largest group written by one flush. */
  readonly maxItems: number;
}

interface Waiting<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class GroupCommit<T> {
  private readonly waiting: Waiting<T>[] = [];
  private running = false;

  constructor(
    private readonly write: (items: readonly T[]) => Promise<void>,
    private readonly options: GroupCommitOptions = { maxItems: 500 },
  ) {}

  /** Resolves once `item` is written (with the others of its group). */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  /** Items not written yet (the running group included). */
  get pending(): number {
    return this.waiting.length;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, this.options.maxItems);
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
      this.running = false;
    }
  }
}
