/**
 * The lifecycle the relay and the policy proxy share once a session is established: two
 * Duplexes (client and target) that end together. When either side ends, closes or fails, or
 * the session is aborted, the other is ended too, and whatever has not closed after
 * `closeGraceMs` is destroyed. An abort whose reason is a HoopError first tells the client why
 * (FATAL 57P01). Resolves once both sides are closed.
 */
import type { Duplex } from 'node:stream';
import type { Clock, Logger, TimerHandle } from '@hoop/shared';
import { terminationResponse } from './errors.js';
import { errorResponse } from './writer.js';

export interface SidesOptions {
  readonly signal: AbortSignal;
  readonly clock: Clock;
  readonly closeGraceMs: number;
  readonly logger: Logger;
  /** Names the mechanism in debug logs ("relay", "proxy"). */
  readonly label: string;
}

export interface SidesHooks {
  /** Starts moving bytes; called once the lifecycle listeners are in place. */
  start(): void;
  /** Called once both sides are closed, before the promise resolves. */
  closed(): void;
  /** Receives the function that ends both sides gracefully (for failures found later). */
  shutdown?(end: () => void): void;
}

export function joinSides(
  client: Duplex,
  target: Duplex,
  options: SidesOptions,
  hooks: SidesHooks,
): Promise<void> {
  const { signal, clock, logger, label } = options;
  return new Promise<void>((resolve) => {
    const sides = [client, target] as const;
    const closed = new Set<Duplex>();
    let grace: TimerHandle | undefined;

    const destroyAll = (): void => {
      for (const side of sides) side.destroy();
    };

    /** Ends both sides gracefully and arms the timer that destroys what is left. */
    const shutdown = (): void => {
      for (const side of sides) if (!side.writableEnded && !side.destroyed) side.end();
      grace ??= clock.setTimeout(destroyAll, options.closeGraceMs);
    };

    const onClose = (side: Duplex): void => {
      closed.add(side);
      if (closed.size < sides.length) {
        shutdown();
        return;
      }
      if (grace !== undefined) clock.clearTimeout(grace);
      signal.removeEventListener('abort', onAbort);
      hooks.closed();
      resolve();
    };

    const onAbort = (): void => {
      logger.debug(`session aborted, closing the ${label}`);
      target.destroy();
      const notice = terminationResponse(signal.reason);
      if (notice !== undefined && !client.destroyed && !client.writableEnded) {
        client.write(errorResponse(notice));
      }
      shutdown();
    };

    hooks.shutdown?.(shutdown);
    for (const side of sides) {
      const name = side === client ? 'client' : 'target';
      side.on('error', (err: Error) => {
        logger.debug(`${label} stream failed`, { side: name, error: err });
        destroyAll();
      });
      side.once('end', shutdown);
      if (side.closed) onClose(side);
      else side.once('close', () => onClose(side));
    }
    signal.addEventListener('abort', onAbort);
    hooks.start();
    if (signal.aborted) onAbort();
  });
}
