/** Bounded waiting: every wait in the e2e suite has a deadline and says what it waited for. */

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Poll interval. Default 50 ms. */
  readonly intervalMs?: number;
  /** Named in the timeout error. */
  readonly what: string;
  /** Extra context for the timeout error (e.g. a process's stderr tail). */
  readonly details?: () => string;
}

/**
 * Polls `check` until it returns something other than undefined/false, and returns that value.
 * A check that throws counts as "not yet"; its last error is reported on timeout.
 */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const details = options.details?.();
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${options.what}${cause}${details ? `\n${details}` : ''}`,
      );
    }
    await sleep(options.intervalMs ?? 50);
  }
}

/** Rejects with a named timeout error if `promise` has not settled within `timeoutMs`. */
export async function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
