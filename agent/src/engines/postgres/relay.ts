/**
 * The post-handshake relay: bytes both ways with pipe backpressure (a slow reader pauses the
 * other side; nothing is buffered beyond the streams' high-water marks), no parsing. When either
 * side ends, closes or fails, or the session is aborted, the other side is ended too; whatever
 * has not closed after `closeGraceMs` is destroyed. Resolves once both sides are closed.
 */
import type { Duplex } from 'node:stream';
import type { Clock, Logger } from '@hoop/shared';
import { joinSides } from './sides.js';

export interface RelayOptions {
  readonly signal: AbortSignal;
  readonly clock: Clock;
  readonly closeGraceMs: number;
  readonly logger: Logger;
}

export function relay(client: Duplex, target: Duplex, options: RelayOptions): Promise<void> {
  return joinSides(
    client,
    target,
    { ...options, label: 'relay' },
    {
      start: () => {
        client.pipe(target);
        target.pipe(client);
      },
      closed: () => {
        client.unpipe(target);
        target.unpipe(client);
      },
    },
  );
}
