/**
 * Reads packets from a stream during the handshake: feeds a PacketReader one chunk at a time and
 * keeps the stream paused otherwise, so at most one message plus one chunk is ever buffered.
 * `detach()` hands the stream back (paused, listeners removed) with any bytes already read, for
 * the raw relay that follows the handshake.
 */
import type { Readable } from 'node:stream';
import { PgFailure, type PgSide, PostgresEngineError, protocolError } from './errors.js';
import { SqlState } from './messages.js';
import type { PacketReader, PgMessage, StartupPacket } from './reader.js';

export class StreamSource {
  private readonly stream: Readable;
  private readonly reader: PacketReader;
  private readonly side: PgSide;
  private readonly signal: AbortSignal;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private attached = true;

  constructor(stream: Readable, reader: PacketReader, side: PgSide, signal: AbortSignal) {
    this.stream = stream;
    this.reader = reader;
    this.side = side;
    this.signal = signal;
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
    stream.pause();
    signal.addEventListener('abort', this.onAbort);
  }

  /** True once the stream ended without any buffered bytes left. */
  get drained(): boolean {
    return this.ended && this.reader.bufferedBytes === 0;
  }

  /** The next startup packet; undefined if the peer closed cleanly before sending a byte of it. */
  async startup(): Promise<StartupPacket | undefined> {
    try {
      return await this.next(() => this.reader.nextStartup());
    } catch (err) {
      if (err instanceof PostgresEngineError && err.reason === PgFailure.closed && this.drained) {
        return undefined;
      }
      throw err;
    }
  }

  /** The next typed message. */
  message(): Promise<PgMessage> {
    return this.next(() => this.reader.nextMessage());
  }

  /** Stops reading: removes listeners, leaves the stream paused, returns unread bytes. */
  detach(): Buffer {
    if (this.attached) {
      this.attached = false;
      this.stream.off('data', this.onData);
      this.stream.off('end', this.onEnd);
      this.stream.off('close', this.onEnd);
      this.stream.off('error', this.onError);
      this.signal.removeEventListener('abort', this.onAbort);
      this.stream.pause();
    }
    return this.reader.takeRemaining();
  }

  private async next<T>(take: () => T | undefined): Promise<T> {
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      if (this.signal.aborted) throw abortError(this.signal);
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) {
        throw closedError(
          this.side,
          this.reader.bufferedBytes === 0
            ? `the ${this.side} closed the connection during the handshake`
            : `the ${this.side} closed the connection in the middle of a message`,
        );
      }
      if (!this.attached) throw new Error('StreamSource used after detach()');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.stream.resume();
      });
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private readonly onData = (chunk: Buffer | string): void => {
    this.stream.pause();
    this.reader.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    this.notify();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private readonly onError = (err: Error): void => {
    this.failure = closedError(this.side, `the ${this.side} connection failed: ${err.message}`);
    this.ended = true;
    this.notify();
  };

  private readonly onAbort = (): void => {
    this.notify();
  };
}

/** The peer went away mid-handshake: a client that left, or a target that hung up. */
function closedError(side: PgSide, message: string): PostgresEngineError {
  if (side === 'client') return protocolError(side, PgFailure.closed, message);
  return new PostgresEngineError('TARGET_UNREACHABLE', PgFailure.closed, side, message, {
    response: {
      severity: 'FATAL',
      code: SqlState.connectionFailure,
      message: `hoop: ${message}`,
    },
  });
}

/** The error a handshake read fails with when its signal aborts: the reason if typed, else ABORTED. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof PostgresEngineError) return reason;
  return new PostgresEngineError(
    'INTERNAL',
    PgFailure.aborted,
    'client',
    'the session was aborted',
    {
      response: {
        severity: 'FATAL',
        code: SqlState.adminShutdown,
        message: 'hoop: the session was ended by the agent',
      },
    },
  );
}
