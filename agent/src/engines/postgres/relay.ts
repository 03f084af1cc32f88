/**
 * The post-handshake relay: bytes both ways with pipe backpressure (a slow reader pauses the
 * other side; nothing is buffered beyond the streams' high-water marks), no parsing. When either
 * side ends, closes or fails, or the session is aborted, the other side is ended too; whatever
 * has not closed after `closeGraceMs` is destroyed. Resolves once both sides are closed.
 */
import type { Duplex } from 'node:stream';
import type { Clock, Logger, TimerHandle } from '@hoop/shared';
import { terminationResponse } from './errors.js';
import { errorResponse } from './writer.js';

export interface RelayOptions {
  readonly signal: AbortSignal;
  readonly clock: Clock;
  readonly closeGraceMs: number;
  readonly logger: Logger;
}

export function relay(client: Duplex, target: Duplex, options: RelayOptions): Promise<void> {
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
      grace ??= options.clock.setTimeout(destroyAll, options.closeGraceMs);
    };

    const onClose = (side: Duplex): void => {
      closed.add(side);
      if (closed.size < sides.length) {
        shutdown();
        return;
      }
      if (grace !== undefined) options.clock.clearTimeout(grace);
      options.signal.removeEventListener('abort', onAbort);
      client.unpipe(target);
      target.unpipe(client);
      resolve();
    };

    const onAbort = (): void => {
      options.logger.debug('session aborted, closing the relay');
      target.destroy();
      const notice = terminationResponse(options.signal.reason);
      if (notice !== undefined && !client.destroyed && !client.writableEnded)
        client.write(errorResponse(notice));
      shutdown();
    };

    for (const side of sides) {
      const name = side === client ? 'client' : 'target';
      side.on('error', (err: Error) => {
        options.logger.debug('relay stream failed', { side: name, error: err });
        destroyAll();
      });
      side.once('end', shutdown);
      if (side.closed) onClose(side);
      else side.once('close', () => onClose(side));
    }
    options.signal.addEventListener('abort', onAbort);
    client.pipe(target);
    target.pipe(client);
    if (options.signal.aborted) onAbort();
  });
}
