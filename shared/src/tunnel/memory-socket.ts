/**
 * Two ends of a tunnel socket inside one process: what one end sends, the other receives as a
 * WebSocket message, in order, on a later microtask. The broker's native Postgres endpoint uses a
 * pair to reach its own hub, so a psql session costs no loopback TCP connection, HTTP upgrade or
 * WebSocket framing between two parts of the same process.
 *
 * Semantics kept from a WebSocket, which the tunnel relies on:
 * - messages arrive whole and in order, never inside the sender's call (no re-entrancy);
 * - `bufferedAmount` counts bytes sent and not yet delivered;
 * - a close is delivered after every message sent before it, then both ends emit 'close' once;
 * - ping is answered with pong.
 * Buffers are handed over, not copied: a sender must not reuse one it has sent (the tunnel's
 * frame sender never does).
 */
import { EventEmitter } from 'node:events';
import { type WebSocketLike, WS_OPEN } from './socket.js';

const WS_CLOSING = 2;
const WS_CLOSED = 3;

type Delivery =
  | { readonly kind: 'message'; readonly data: Buffer }
  | { readonly kind: 'ping' | 'pong' }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string };

export class MemorySocket extends EventEmitter implements WebSocketLike {
  private state = WS_OPEN;
  private sent = 0;
  private readonly inbox: Delivery[] = [];
  private scheduled = false;
  private closeEmitted = false;
  /** Set by pair(). */
  private peer!: MemorySocket;

  static pair(): [MemorySocket, MemorySocket] {
    const a = new MemorySocket();
    const b = new MemorySocket();
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  private constructor() {
    super();
  }

  get readyState(): number {
    return this.state;
  }

  get bufferedAmount(): number {
    return this.sent;
  }

  send(data: Buffer, _options: { binary: boolean }, cb?: (err?: Error) => void): void {
    if (this.state !== WS_OPEN) {
      if (cb !== undefined) queueMicrotask(() => cb(new Error('the socket is closed')));
      return;
    }
    this.sent += data.length;
    this.peer.enqueue({ kind: 'message', data });
    if (cb !== undefined) queueMicrotask(() => cb());
  }

  ping(): void {
    if (this.state === WS_OPEN) this.peer.enqueue({ kind: 'ping' });
  }

  close(code = 1000, reason = ''): void {
    if (this.state !== WS_OPEN) return;
    this.state = WS_CLOSING;
    this.peer.enqueue({ kind: 'close', code, reason });
  }

  /** Like close, without a reason (ws: 1006, abnormal closure). */
  terminate(): void {
    this.close(1006, '');
  }

  private enqueue(delivery: Delivery): void {
    this.inbox.push(delivery);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.deliver());
  }

  private deliver(): void {
    this.scheduled = false;
    const batch = this.inbox.splice(0, this.inbox.length);
    for (const delivery of batch) {
      switch (delivery.kind) {
        case 'message':
          this.peer.sent -= delivery.data.length;
          if (this.state !== WS_CLOSED) this.emit('message', delivery.data, true);
          break;
        case 'ping':
          if (this.state !== WS_OPEN) break;
          this.emit('ping');
          this.peer.enqueue({ kind: 'pong' });
          break;
        case 'pong':
          if (this.state === WS_OPEN) this.emit('pong');
          break;
        case 'close':
          // The peer closed: this end closes too, then both report it.
          this.state = WS_CLOSED;
          this.peer.state = WS_CLOSED;
          this.emitClose(delivery.code, delivery.reason);
          this.peer.emitClose(delivery.code, delivery.reason);
          break;
      }
    }
  }

  private emitClose(code: number, reason: string): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close', code, Buffer.from(reason, 'utf8'));
  }
}
