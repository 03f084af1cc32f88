/**
 * One side of one tunnel WebSocket: frame reader and batching sender, the versioned hello
 * handshake, heartbeats, and closing with a named error. The broker drives it directly (it
 * relays frames); the CLI and agent wrap it in a TunnelEndpoint that turns streams into Duplexes.
 *
 * Lifecycle: handshaking → ready → closed.
 */
import type { Clock } from '../clock.js';
import { errorCodeFromWsClose, HoopError, toHoopError } from '../errors.js';
import type { Logger } from '../logger.js';
import { encodeFrame, encodeWindow, type Frame, FrameKind, TUNNEL_STREAM } from './frame.js';
import { Heartbeat } from './heartbeat.js';
import type { TunnelLimits } from './limits.js';
import {
  type ControlMessage,
  decodeControl,
  encodeControl,
  errorBodyOf,
  type HelloMessage,
  hoopErrorOf,
  PROTOCOL_VERSION,
  type TunnelRole,
} from './messages.js';
import { FrameReader } from './reader.js';
import { FrameSender } from './sender.js';
import { messageBuffer, type WebSocketLike, WS_OPEN } from './socket.js';

export const ConnectionState = {
  handshaking: 'handshaking',
  ready: 'ready',
  closed: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

export interface FrameConnectionOptions {
  readonly role: TunnelRole;
  /** The server answers hellos; the client sends the first one. */
  readonly side: 'client' | 'server';
  readonly limits: TunnelLimits;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly name?: string;
}

/** What this side's hello says beyond the protocol version, its role and its frame limit. */
export interface HelloOptions {
  /** Per-stream window this side grants (default: the limits' window). */
  readonly window?: number;
  readonly name?: string;
  /** Broker only: it holds a client's early DATA (see HelloMessage.earlyData). */
  readonly earlyData?: boolean;
  /** Agent only: it honours `admit` on the sessions it opens (see HelloMessage.admit). */
  readonly admit?: boolean;
}

export interface FrameConnectionHandlers {
  /** A valid peer hello arrived; the connection is ready. */
  onReady?(peer: HelloMessage): void;
  /** A frame arrived after the handshake (control frames decoded, stream-0 handled here). */
  onFrame(frame: Frame, control: ControlMessage | undefined): void;
  /** The connection is closed; `error` says why when it was not a clean close. */
  onClose(error: HoopError | undefined): void;
}

export class FrameConnection {
  private stateValue: ConnectionState = ConnectionState.handshaking;
  private readonly reader: FrameReader;
  private readonly sender: FrameSender;
  private readonly heartbeat: Heartbeat;
  private closeError: HoopError | undefined;
  private handlers: FrameConnectionHandlers | undefined;
  private helloOptions: HelloOptions | undefined;
  peer: HelloMessage | undefined;

  constructor(
    private readonly ws: WebSocketLike,
    private readonly options: FrameConnectionOptions,
  ) {
    this.reader = new FrameReader({ maxFrameBytes: options.limits.maxFrameBytes });
    this.sender = new FrameSender(ws, options.limits, (err) => this.close(err));
    this.heartbeat = new Heartbeat(
      options.clock,
      options.limits.heartbeatMs,
      () => {
        if (ws.readyState === WS_OPEN) ws.ping();
      },
      () =>
        this.close(
          new HoopError(
            'HEARTBEAT_TIMEOUT',
            `no heartbeat from ${options.name ?? 'peer'} for ${2 * options.limits.heartbeatMs} ms`,
          ),
          true,
        ),
    );
    ws.on('message', (data) => this.receive(messageBuffer(data)));
    ws.on('ping', () => this.heartbeat.seen());
    ws.on('pong', () => this.heartbeat.seen());
    ws.on('error', (err) => {
      options.logger.debug('tunnel socket error', { error: err });
    });
    ws.on('close', (code, reason) => this.closed(code, reason.toString('utf8')));
  }

  /**
   * Attach handlers and, on the client side, send the hello (the server answers the peer's
   * hello with its own, built from the same options).
   */
  start(handlers: FrameConnectionHandlers, hello?: HelloOptions): void {
    this.handlers = handlers;
    this.helloOptions = hello;
    if (this.options.side === 'client') this.sendHello();
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get bufferedBytes(): number {
    return this.sender.bufferedBytes;
  }

  sendControl(stream: number, message: ControlMessage): void {
    this.sender.push(encodeFrame(FrameKind.control, stream, encodeControl(message)));
  }

  sendData(stream: number, body: Buffer): void {
    this.sender.pushData(stream, body);
  }

  sendWindow(stream: number, credit: number): void {
    this.sender.push(encodeWindow(stream, credit));
  }

  /** Writes the queued frames now (one WebSocket message) rather than at the end of the turn. */
  flush(): void {
    this.sender.flush();
  }

  /** Queues an already encoded frame (the broker's relay). */
  sendEncoded(encoded: Buffer): void {
    this.sender.push(encoded);
  }

  /**
   * Closes the tunnel. With an error, the peer is told why (a stream-0 error message and the
   * error's WebSocket close code) before the socket closes.
   */
  close(error?: HoopError, terminate = false): void {
    if (this.stateValue === ConnectionState.closed) return;
    this.closeError = error;
    if (error !== undefined && !terminate && this.ws.readyState === WS_OPEN) {
      this.sendControl(TUNNEL_STREAM, { t: 'error', error: errorBodyOf(error) });
      this.sender.flush();
    }
    if (terminate) this.ws.terminate();
    else this.ws.close(error?.wsCloseCode ?? 1000, error?.code ?? 'closed');
    this.closed(error?.wsCloseCode ?? 1000, error?.code ?? 'closed');
  }

  private sendHello(): void {
    const own = this.helloOptions;
    const hello: HelloMessage = {
      t: 'hello',
      version: PROTOCOL_VERSION,
      role: this.options.role,
      window: own?.window ?? this.options.limits.window,
      maxFrameBytes: this.options.limits.maxFrameBytes,
      ...(own?.name === undefined ? {} : { name: own.name }),
      ...(own?.earlyData === true ? { earlyData: true } : {}),
      ...(own?.admit === true ? { admit: true } : {}),
    };
    this.sendControl(TUNNEL_STREAM, hello);
    this.sender.flush();
  }

  private receive(data: Buffer): void {
    if (this.stateValue === ConnectionState.closed) return;
    this.heartbeat.seen();
    try {
      if (data.length > this.options.limits.maxMessageBytes) {
        throw new HoopError(
          'FRAME_TOO_LARGE',
          `tunnel message of ${data.length} bytes exceeds the ${this.options.limits.maxMessageBytes}-byte limit`,
        );
      }
      const frames = this.reader.push(data);
      this.reader.assertDrained();
      for (const frame of frames) {
        if (this.state === ConnectionState.closed) return;
        this.dispatch(frame);
      }
    } catch (err) {
      const error = toHoopError(err);
      this.options.logger.warn('closing tunnel on bad input', {
        code: error.code,
        reason: error.message,
        peer: this.options.name,
      });
      this.close(error);
    }
  }

  private dispatch(frame: Frame): void {
    const control = frame.kind === FrameKind.control ? decodeControl(frame.body) : undefined;
    if (frame.stream === TUNNEL_STREAM && control?.t === 'error') {
      // The peer says why it is about to close; keep it for onClose.
      this.closeError = hoopErrorOf(control.error);
      return;
    }
    if (this.stateValue === ConnectionState.handshaking) {
      if (control?.t !== 'hello' || frame.stream !== TUNNEL_STREAM) {
        throw new HoopError('FRAME_MALFORMED', 'expected hello as the first tunnel frame');
      }
      if (control.version !== PROTOCOL_VERSION) {
        throw new HoopError(
          'PROTOCOL_VERSION',
          `peer speaks tunnel protocol v${control.version}, this side speaks v${PROTOCOL_VERSION}`,
        );
      }
      this.peer = control;
      if (this.options.side === 'server') this.sendHello();
      this.stateValue = ConnectionState.ready;
      this.handlers?.onReady?.(control);
      return;
    }
    if (frame.stream === TUNNEL_STREAM) {
      if (
        control?.t === 'audit' ||
        control?.t === 'audit-ack' ||
        control?.t === 'terminate' ||
        control?.t === 'review-request' ||
        control?.t === 'review-pending' ||
        control?.t === 'review-decision'
      ) {
        this.handlers?.onFrame(frame, control);
        return;
      }
      throw new HoopError(
        'FRAME_MALFORMED',
        `unexpected ${control?.t ?? 'data'} frame on stream 0`,
      );
    }
    this.handlers?.onFrame(frame, control);
  }

  private closed(code: number, reason: string): void {
    if (this.stateValue === ConnectionState.closed) return;
    this.stateValue = ConnectionState.closed;
    this.heartbeat.stop();
    this.sender.close();
    let error = this.closeError;
    if (error === undefined && code !== 1000 && code !== 1005) {
      const known = errorCodeFromWsClose(code);
      error = new HoopError(
        known ?? 'TUNNEL_CLOSED',
        `tunnel closed by peer (${code}${reason ? ` ${reason}` : ''})`,
      );
    }
    this.handlers?.onClose(error);
  }
}
