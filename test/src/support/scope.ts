/**
 * A disposal scope: resources registered here are released in reverse order by `dispose()`,
 * which never throws (each failure is collected and reported once). A suite creates one in
 * `before` and disposes it in `after`, so processes die even when a test fails.
 */

export interface AsyncDisposableLike {
  [Symbol.asyncDispose](): PromiseLike<void>;
}

export class Scope {
  private readonly cleanups: (() => PromiseLike<unknown>)[] = [];

  /** Registers `resource` for disposal and returns it. */
  use<T extends AsyncDisposableLike>(resource: T): T {
    this.cleanups.push(() => resource[Symbol.asyncDispose]());
    return resource;
  }

  defer(cleanup: () => PromiseLike<unknown>): void {
    this.cleanups.push(cleanup);
  }

  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop() as () => PromiseLike<unknown>;
      try {
        await cleanup();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `${errors.length} cleanup(s) failed`);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
