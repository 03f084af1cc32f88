/**
 * A tunnel endpoint for the CLI and the agent: a FrameConnection whose streams are Duplexes.
 * The CLI opens streams (`open`); the agent accepts them (the 'stream' event carries the
 * broker's open-session message). Frames for streams that are already gone are dropped: they
 * are the normal race of a close crossing data in flight.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import { HoopError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ConnectionState, FrameConnection } from './connection.js';
import { decodeWindow, type Frame, FrameKind, MAX_STREAM_ID, TUNNEL_STREAM } from './frame.js';
import { EARLY_DATA_MAX_BYTES, type TunnelLimits } from './limits.js';
import {
  type ControlMessage,
  type HelloMessage,
  hoopErrorOf,
  type OpenConnectionMessage,
  type OpenSessionMessage,
  type TunnelRole,
} from './messages.js';
import type { WebSocketLike } from './socket.js';
import { type StreamLink, StreamState, TunnelStream } from './stream.js';

export interface TunnelEndpointOptions {
  readonly role: TunnelRole;
  readonly limits: TunnelLimits;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly name?: string;
  /** Agent only: its hello offers `admit`, so it gets 'admit' events for the sessions it serves. */
  readonly admit?: boolean;
}

export interface TunnelEndpointEvents {
  ready: [HelloMessage];
  /** Tunnel-level control from the broker (stream 0): audit-ack, terminate. */
  control: [ControlMessage];
  stream: [TunnelStream, OpenSessionMessage];
  /** The broker admitted the session on this stream (OpenSessionMessage.admit). */
  admit: [TunnelStream];
  close: [HoopError | undefined];
}

interface PendingOpen {
  resolve(session: string): void;
  reject(err: HoopError): void;
}

export class TunnelEndpoint extends EventEmitter<TunnelEndpointEvents> implements StreamLink {
  readonly connection: FrameConnection;
  private readonly streams = new Map<number, TunnelStream>();
  private readonly pendingOpens = new Map<number, PendingOpen>();
  private nextStreamId = 1;
  private window: number;
  private readyPromise: Promise<HelloMessage>;

  constructor(
    ws: WebSocketLike,
    private readonly options: TunnelEndpointOptions,
  ) {
    super();
    this.window = options.limits.window;
    this.connection = new FrameConnection(ws, {
      role: options.role,
      side: 'client',
      limits: options.limits,
      clock: options.clock,
      logger: options.logger,
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    this.readyPromise = new Promise<HelloMessage>((resolve, reject) => {
      this.once('ready', resolve);
      this.once('close', (err) =>
        reject(err ?? new HoopError('TUNNEL_CLOSED', 'tunnel closed during the handshake')),
      );
    });
    this.readyPromise.catch(() => {});
    this.connection.start(
      {
        onReady: (peer) => {
          // The broker's window governs every stream end to end (it enforces it while relaying).
          this.window = peer.window;
          this.emit('ready', peer);
        },
        onFrame: (frame, control) => this.onFrame(frame, control),
        onClose: (err) => this.onClose(err),
      },
      {
        window: options.limits.window,
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.admit === true ? { admit: true } : {}),
      },
    );
  }

  /** Resolves with the broker's hello once the handshake is done. */
  ready(): Promise<HelloMessage> {
    return this.readyPromise;
  }

  get isOpen(): boolean {
    return this.connection.state !== ConnectionState.closed;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Opens a stream to a connection (CLI side). Resolves with the stream once the agent has
   * accepted it (open-ok), rejects with the typed open-error otherwise.
   *
   * `early`: the client's first bytes, when they may come while the open is in flight (a
   * Postgres StartupMessage). If they arrive before the broker has answered, and the broker
   * holds early data (its hello says `earlyData`), they are written to the stream at once: the
   * broker passes them to the agent as soon as it may (HelloMessage.admit), instead of the
   * client sending them after open-ok. `earlySent` says whether they went; if not, the caller writes
   * them itself (on open-ok) or still has them for a refusal.
   */
  async open(
    message: OpenConnectionMessage,
    early?: Promise<Buffer>,
  ): Promise<{ stream: TunnelStream; session: string; earlySent: boolean }> {
    const hello = await this.readyPromise;
    if (this.streams.size >= this.options.limits.maxStreams) {
      throw new HoopError(
        'TOO_MANY_STREAMS',
        `tunnel already carries ${this.streams.size} streams`,
      );
    }
    const id = this.allocateId();
    const stream = new TunnelStream(
      this,
      id,
      { sendWindow: this.window, receiveWindow: this.window },
      StreamState.opening,
    );
    this.streams.set(id, stream);
    let earlySent = false;
    const session = await new Promise<string>((resolve, reject) => {
      this.pendingOpens.set(id, { resolve, reject });
      this.connection.sendControl(id, message);
      if (early === undefined || hello.earlyData !== true) return;
      early.then(
        (bytes) => {
          // Only while the open is unanswered: after open-ok the caller writes them in order.
          if (!this.pendingOpens.has(id) || stream.destroyed) return;
          if (bytes.length === 0 || bytes.length > EARLY_DATA_MAX_BYTES) return;
          earlySent = true;
          stream.write(bytes);
        },
        () => {},
      );
    });
    return { stream, session, earlySent };
  }

  close(error?: HoopError): void {
    this.connection.close(error);
  }

  // ---- StreamLink ----

  sendData(stream: number, body: Buffer): void {
    this.connection.sendData(stream, body);
  }

  sendWindow(stream: number, credit: number): void {
    this.connection.sendWindow(stream, credit);
  }

  sendControl(stream: number, message: ControlMessage): void {
    this.connection.sendControl(stream, message);
  }

  /** Writes what is queued now instead of at the end of this turn of the event loop. */
  flush(): void {
    this.connection.flush();
  }

  release(stream: number): void {
    this.streams.delete(stream);
    const pending = this.pendingOpens.get(stream);
    if (pending !== undefined) {
      this.pendingOpens.delete(stream);
      pending.reject(new HoopError('TUNNEL_CLOSED', 'stream closed before it opened'));
    }
  }

  // ---- inbound ----

  private allocateId(): number {
    for (let i = 0; i < 1024; i++) {
      const id = this.nextStreamId;
      this.nextStreamId = id >= MAX_STREAM_ID ? 1 : id + 1;
      if (!this.streams.has(id)) return id;
    }
    throw new HoopError('TOO_MANY_STREAMS', 'no free stream id');
  }

  private onFrame(frame: Frame, control: ControlMessage | undefined): void {
    if (frame.stream === TUNNEL_STREAM) {
      if (control !== undefined) this.emit('control', control);
      return;
    }
    const stream = this.streams.get(frame.stream);
    if (frame.kind === FrameKind.data) {
      stream?.receiveData(frame.body);
      return;
    }
    if (frame.kind === FrameKind.window) {
      const credit = decodeWindow(frame);
      stream?.receiveWindowCredit(credit);
      return;
    }
    if (control === undefined) return;
    switch (control.t) {
      case 'open-session': {
        if (stream !== undefined) {
          throw new HoopError(
            'FRAME_MALFORMED',
            `open-session for stream ${frame.stream} which is already open`,
          );
        }
        if (this.streams.size >= this.options.limits.maxStreams) {
          this.connection.sendControl(frame.stream, {
            t: 'open-error',
            error: {
              code: 'TOO_MANY_STREAMS',
              message: `agent already serves ${this.streams.size} streams`,
            },
          });
          return;
        }
        const accepted = new TunnelStream(this, frame.stream, {
          sendWindow: this.window,
          receiveWindow: this.window,
        });
        this.streams.set(frame.stream, accepted);
        this.emit('stream', accepted, control);
        return;
      }
      case 'open-ok': {
        const pending = this.pendingOpens.get(frame.stream);
        if (pending === undefined || stream === undefined) return;
        this.pendingOpens.delete(frame.stream);
        stream.accepted();
        pending.resolve(control.session);
        return;
      }
      case 'open-error':
        this.refuseOpen(frame.stream, hoopErrorOf(control.error));
        return;
      case 'close': {
        // Closed before it opened (a session terminated while opening): like an open-error.
        const refused = this.refuseOpen(
          frame.stream,
          control.error === undefined
            ? new HoopError('TUNNEL_CLOSED', 'the stream closed before it opened')
            : hoopErrorOf(control.error),
        );
        if (!refused) stream?.receiveClose(control);
        return;
      }
      case 'admit':
        if (stream !== undefined) this.emit('admit', stream);
        return;
      default:
        throw new HoopError(
          'FRAME_MALFORMED',
          `unexpected ${control.t} message on stream ${frame.stream}`,
        );
    }
  }

  /**
   * Ends a stream whose open is unanswered, rejecting its open() with `error`. The stream was
   * never handed out, so it is destroyed without an error (nobody listens for one). False when
   * the stream has no pending open.
   */
  private refuseOpen(id: number, error: HoopError): boolean {
    const pending = this.pendingOpens.get(id);
    const stream = this.streams.get(id);
    if (pending === undefined || stream === undefined) return false;
    this.pendingOpens.delete(id);
    this.streams.delete(id);
    stream.transition(StreamState.closed);
    stream.destroy();
    pending.reject(error);
    return true;
  }

  private onClose(err: HoopError | undefined): void {
    const reason = err ?? new HoopError('TUNNEL_CLOSED', 'the tunnel to the broker closed');
    const unanswered = new Set(this.pendingOpens.keys());
    for (const [id, pending] of this.pendingOpens) {
      this.pendingOpens.delete(id);
      pending.reject(reason);
    }
    for (const stream of [...this.streams.values()]) {
      stream.transition(StreamState.closed);
      // A stream whose open was unanswered was never handed out: its open() rejects with the
      // reason, and an 'error' on it would have no listener (an uncaught exception).
      stream.destroy(unanswered.has(stream.id) ? undefined : reason);
    }
    this.streams.clear();
    this.emit('close', err);
  }
}
