/**
 * The client messages the target has yet to answer, in order (the target answers in order), so
 * the proxy can tie each answer to what caused it. Bounded: past `max` pending entries the client
 * is failed with TOO_MANY_PENDING. `idle()` resolves once everything forwarded is answered.
 */
import { PgFailure, protocolError } from './errors.js';

export class AnswerQueue<E> {
  private readonly entries: E[] = [];
  private head = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly max: number) {}

  push(entry: E): void {
    if (this.pending >= this.max) {
      throw protocolError(
        'client',
        PgFailure.tooManyPending,
        `more than ${this.max} messages awaiting an answer (maxPendingMessages)`,
      );
    }
    this.entries.push(entry);
  }

  peek(): E | undefined {
    return this.entries[this.head];
  }

  pop(): E | undefined {
    const e = this.entries[this.head];
    if (e === undefined) return undefined;
    this.entries[this.head] = undefined as unknown as E;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    if (this.head >= this.entries.length) {
      this.entries.length = 0;
      this.head = 0;
    }
    return e;
  }

  get pending(): number {
    return this.entries.length - this.head;
  }

  /** Resolves once every pushed entry has been popped; undefined when that is already so. */
  idle(): Promise<void> | undefined {
    if (this.pending === 0) return undefined;
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Wakes `idle()` waiters when nothing is pending (after a pop). */
  wakeIfIdle(): void {
    if (this.pending !== 0) return;
    this.wakeAll();
  }

  /** Wakes every waiter (the session is over). */
  wakeAll(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }
}
