/**
 * One multiplexed stream (one client TCP connection) as a Node Duplex, with credit-based flow
 * control:
 *
 * - sending: at most `sendCredit` bytes may be in flight; a write beyond it waits (its callback
 *   is held, so `pipe()` backpressure pauses the source) until the peer grants a WINDOW;
 * - receiving: bytes the reader has taken are granted back in WINDOW frames; a peer that sends
 *   past the window it was granted gets WINDOW_EXCEEDED.
 *
 * Lifecycle: opening → open → closed (checked transitions, one dispatcher in the endpoint).
 */
import { Duplex } from 'node:stream';
import { HoopError } from '../errors.js';
import type { CloseMessage, ControlMessage, ErrorBody } from './messages.js';
import { hoopErrorOf } from './messages.js';

export const StreamState = { opening: 'opening', open: 'open', closed: 'closed' } as const;
export type StreamState = (typeof StreamState)[keyof typeof StreamState];

const transitions: Record<StreamState, readonly StreamState[]> = {
  opening: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

/** What a stream needs from its tunnel. */
export interface StreamLink {
  sendData(stream: number, body: Buffer): void;
  sendWindow(stream: number, credit: number): void;
  sendControl(stream: number, message: ControlMessage): void;
  release(stream: number): void;
}

export interface TunnelStreamOptions {
  /** Credit the peer granted us (its receive window). */
  readonly sendWindow: number;
  /** Credit we grant the peer (our receive window). */
  readonly receiveWindow: number;
}

export class TunnelStream extends Duplex {
  readonly id: number;
  private stateValue: StreamState;
  private sendCredit: number;
  private readonly receiveWindow: number;
  /** Bytes received that we have not granted back yet. */
  private outstanding = 0;
  /** Of `outstanding`, bytes already taken by the reader, waiting to be granted in a batch. */
  private consumed = 0;
  private readBlocked = false;
  private waiting: { chunk: Buffer; callback: (err?: Error | null) => void } | undefined;
  private peerClosed = false;
  /** Set while the stream is being handed to the caller of `open()` (see `accepted`). */
  private handingOver = false;
  private heldError: HoopError | undefined;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    private readonly link: StreamLink,
    id: number,
    options: TunnelStreamOptions,
    initialState: StreamState = StreamState.open,
  ) {
    super({ allowHalfOpen: false, readableHighWaterMark: 64 * 1024 });
    this.id = id;
    this.stateValue = initialState;
    this.sendCredit = options.sendWindow;
    this.receiveWindow = options.receiveWindow;
  }

  get state(): StreamState {
    return this.stateValue;
  }

  transition(to: StreamState): void {
    if (this.stateValue === to) return;
    if (!transitions[this.stateValue].includes(to)) {
      throw new HoopError(
        'INTERNAL',
        `stream ${this.id}: illegal transition ${this.stateValue} → ${to}`,
      );
    }
    this.stateValue = to;
  }

  // ---- called by the tunnel endpoint ----

  /**
   * The peer accepted the stream (open-ok): it is open, and about to be handed to the caller of
   * `open()` through a promise. A close with an error that came in the same read (the broker can
   * refuse a session right after accepting it) would otherwise destroy the stream on the next
   * tick, before the caller's continuation could listen for 'error': an uncaught exception. Such
   * an error is held until the next turn of the event loop.
   */
  accepted(): void {
    this.transition(StreamState.open);
    this.handingOver = true;
    setImmediate(() => {
      this.handingOver = false;
      const err = this.heldError;
      this.heldError = undefined;
      if (err !== undefined) this.destroy(err);
    });
  }

  /** DATA arrived from the peer. */
  receiveData(body: Buffer): void {
    if (this.stateValue === StreamState.closed || this.peerClosed) return;
    if (this.outstanding + body.length > this.receiveWindow) {
      this.fail(
        new HoopError(
          'WINDOW_EXCEEDED',
          `stream ${this.id}: peer sent ${this.outstanding + body.length} bytes against a ${this.receiveWindow}-byte window`,
        ),
      );
      return;
    }
    this.outstanding += body.length;
    this.bytesIn += body.length;
    if (this.push(body)) {
      this.consumed += body.length;
      this.grant(false);
    } else {
      this.readBlocked = true;
    }
  }

  /** WINDOW arrived: the peer took `credit` more bytes. */
  receiveWindowCredit(credit: number): void {
    this.sendCredit += credit;
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      this.sendChunk(waiting.chunk, waiting.callback);
    }
  }

  /** The peer closed the stream (cleanly, or with an error). */
  receiveClose(message: CloseMessage): void {
    if (this.peerClosed) return;
    this.peerClosed = true;
    if (message.error !== undefined) {
      if (this.handingOver) this.heldError = hoopErrorOf(message.error);
      else this.destroy(hoopErrorOf(message.error));
      return;
    }
    this.push(null);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.callback();
    if (!this.writableEnded) this.end();
  }

  /** Ends the stream with an error that is also reported to the peer. */
  fail(err: HoopError): void {
    this.destroy(err);
  }

  // ---- Duplex implementation ----

  override _read(): void {
    if (this.readBlocked) {
      this.readBlocked = false;
      this.consumed = this.outstanding;
      this.grant(true);
    }
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    if (this.peerClosed || this.stateValue === StreamState.closed) {
      callback();
      return;
    }
    this.sendChunk(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (!this.peerClosed && this.stateValue !== StreamState.closed) {
      this.link.sendControl(this.id, { t: 'close' });
    }
    // A close ends the whole stream (no half-close): the peer sends nothing after it.
    const hadPeerClosed = this.peerClosed;
    this.peerClosed = true;
    if (!hadPeerClosed) this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!this.peerClosed && this.stateValue !== StreamState.closed) {
      const body: ErrorBody | undefined =
        err instanceof HoopError
          ? { code: err.code, message: err.message, hint: err.hint }
          : undefined;
      this.link.sendControl(
        this.id,
        body === undefined ? { t: 'close' } : { t: 'close', error: body },
      );
    }
    this.peerClosed = true;
    if (this.stateValue !== StreamState.closed) this.transition(StreamState.closed);
    this.link.release(this.id);
    waiting?.callback(err);
    callback(err);
  }

  private sendChunk(chunk: Buffer, callback: (err?: Error | null) => void): void {
    let rest = chunk;
    if (this.sendCredit > 0) {
      const n = Math.min(this.sendCredit, rest.length);
      const part = n === rest.length ? rest : rest.subarray(0, n);
      this.sendCredit -= n;
      this.bytesOut += n;
      this.link.sendData(this.id, part);
      rest = rest.subarray(n);
    }
    if (rest.length === 0) callback();
    else this.waiting = { chunk: rest, callback };
  }

  private grant(force: boolean): void {
    const threshold = Math.min(this.receiveWindow >> 2, 64 * 1024);
    if (this.consumed === 0 || (!force && this.consumed < threshold)) return;
    const credit = this.consumed;
    this.outstanding -= credit;
    this.consumed = 0;
    if (this.stateValue !== StreamState.closed && !this.peerClosed)
      this.link.sendWindow(this.id, credit);
  }
}
