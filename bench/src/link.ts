/**
 * A slow link on loopback: a TCP relay that behaves like a path with `oneWayMs` of delay each
 * way, so a path can be measured as it runs when its client side is far from its server side (a
 * laptop and the bastion, or the CLI and the broker, across a WAN).
 *
 *   client ──► 127.0.0.1:PORT ~~~ oneWayMs ~~~► target
 *   client ◄── 127.0.0.1:PORT ◄~~ oneWayMs ~~~ target
 *
 * The TCP handshake is part of it: the target sees a connection `oneWayMs` after the client
 * made it (the SYN crossing), and nothing the client sends can leave before the handshake's
 * round trip is over. So a path that opens a TCP connection per client connection pays that
 * round trip, and one that keeps a connection open (ssh, hoop connect's tunnel) does not, as on
 * a real network. Bytes keep their order in each direction.
 *
 * It runs in the bench's own process: a relay that only sets timers costs little CPU next to the
 * paths it delays.
 */

import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface SlowLink {
  /** Port on 127.0.0.1 that leads to the target. */
  readonly port: number;
  readonly oneWayMs: number;
  close(): Promise<void>;
}

/** Runs actions at given times, in the order they were queued (times never decrease). */
class Lane {
  private readonly queue: { at: number; run: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  at(time: number, run: () => void): void {
    const last = this.queue[this.queue.length - 1];
    this.queue.push({ at: Math.max(time, last?.at ?? time), run });
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    const next = this.queue[0];
    if (next === undefined) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next.at - performance.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.queue.length > 0 && (this.queue[0]?.at ?? 0) <= now) this.queue.shift()?.run();
    this.arm();
  }
}

export async function startSlowLink(
  target: { readonly host: string; readonly port: number },
  oneWayMs: number,
): Promise<SlowLink> {
  if (!Number.isFinite(oneWayMs) || oneWayMs < 0) {
    throw new RangeError(`oneWayMs must be a non-negative number, got ${oneWayMs}`);
  }
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
  };
  // Half-open allowed: an end travels like data (delayed), and the other way stays open.
  const server: Server = createServer({ allowHalfOpen: true }, (near) => {
    track(near);
    const accepted = performance.now();
    const up = new Lane();
    const down = new Lane();
    let far: Socket | undefined;
    // The SYN crosses: the target sees the connection oneWayMs after the client made it.
    up.at(accepted + oneWayMs, () => {
      far = tcpConnect({ port: target.port, host: target.host, allowHalfOpen: true });
      track(far);
      relay(
        far,
        () => near,
        down,
        () => performance.now() + oneWayMs,
      );
    });
    // The client's bytes leave once the handshake's round trip is over, and cross in oneWayMs.
    const handshaken = accepted + 2 * oneWayMs;
    relay(
      near,
      () => far,
      up,
      () => Math.max(performance.now(), handshaken) + oneWayMs,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    oneWayMs,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Passes `from`'s bytes, its end and its close to the other side (`to()`: the far socket exists
 * only once the SYN has crossed) on `lane`, each at the time `arrival` gives when it came.
 */
function relay(
  from: Socket,
  to: () => Socket | undefined,
  lane: Lane,
  arrival: () => number,
): void {
  from.on('data', (chunk: Buffer) => {
    lane.at(arrival(), () => {
      const other = to();
      if (other !== undefined && !other.destroyed) other.write(chunk);
    });
  });
  from.once('end', () => lane.at(arrival(), () => to()?.end()));
  from.once('close', () => lane.at(arrival(), () => to()?.destroy()));
}
