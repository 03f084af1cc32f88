/**
 * A deliberately tiny Postgres frontend (protocol 3.0: startup, simple Query) for tests that must
 * control how fast a result is read — e.g. stop reading the socket in the middle of a large
 * result to prove nobody upstream buffers it. It counts DataRow messages instead of decoding them.
 * It never sends a password: a server that asks for one fails the connection.
 * Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { connect, type Socket } from 'node:net';

export interface QueryOutcome {
  /** DataRow messages received. */
  readonly rows: number;
  /** The last CommandComplete tag, e.g. "SELECT 1000000". */
  readonly tag: string | undefined;
  /** Bytes of backend messages received for this query. */
  readonly bytes: number;
}

export interface QueryOptions {
  /** Stop reading once this many bytes of the result have arrived… */
  readonly pauseAfterBytes?: number;
  /** …run this while the socket is paused, then resume reading. */
  readonly whilePaused?: () => Promise<void>;
}

export class PgServerError extends Error {
  constructor(readonly fields: Record<string, string>) {
    super(`${fields['S'] ?? 'ERROR'}: ${fields['M'] ?? 'unknown error'} (SQLSTATE ${fields['C']})`);
  }
}

interface Pending {
  resolve(outcome: QueryOutcome): void;
  reject(err: Error): void;
  rows: number;
  bytes: number;
  tag: string | undefined;
  error: PgServerError | undefined;
  options: QueryOptions;
  paused: boolean;
}

const EMPTY = Buffer.alloc(0);

export class RawPgClient {
  private pending: Pending | undefined;
  private buffered: Buffer = EMPTY;
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  /** Connects and completes the startup (the server must not ask for a password). */
  static async connect(options: {
    host: string;
    port: number;
    user: string;
    database: string;
    timeoutMs?: number;
  }): Promise<RawPgClient> {
    const socket = connect({ host: options.host, port: options.port, noDelay: true });
    const client = new RawPgClient(socket);
    const startup = client.expectReady(options.timeoutMs ?? 10_000);
    socket.write(startupMessage({ user: options.user, database: options.database }));
    await startup;
    return client;
  }

  /** Runs `sql` with the simple query protocol and counts its rows. */
  query(sql: string, options: QueryOptions = {}, timeoutMs = 120_000): Promise<QueryOutcome> {
    const done = this.expectReady(timeoutMs, options);
    const body = Buffer.from(`${sql}\0`, 'utf8');
    const header = Buffer.alloc(5);
    header[0] = 0x51; // 'Q'
    header.writeUInt32BE(body.length + 4, 1);
    this.socket.write(Buffer.concat([header, body]));
    return done;
  }

  close(): void {
    if (!this.socket.destroyed) {
      // Terminate ('X'), then close.
      this.socket.end(Buffer.from([0x58, 0, 0, 0, 4]));
      this.socket.destroySoon();
    }
  }

  private expectReady(timeoutMs: number, options: QueryOptions = {}): Promise<QueryOutcome> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    if (this.pending !== undefined) return Promise.reject(new Error('one query at a time'));
    return new Promise<QueryOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.socket.destroy();
        reject(new Error(`no ReadyForQuery within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        resolve: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        rows: 0,
        bytes: 0,
        tag: undefined,
        error: undefined,
        options,
        paused: false,
      };
    });
  }

  private fail(err: Error): void {
    this.closedError ??= err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }

  private receive(chunk: Buffer): void {
    const buf = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let offset = 0;
    // Each message: type (1 byte), length (Int32, counts itself), body.
    while (buf.length - offset >= 5) {
      const length = buf.readUInt32BE(offset + 1);
      if (buf.length - offset < 1 + length) break;
      this.message(buf[offset] as number, buf.subarray(offset + 5, offset + 1 + length));
      offset += 1 + length;
    }
    this.buffered = offset === buf.length ? EMPTY : Buffer.from(buf.subarray(offset));
    const pending = this.pending;
    if (pending !== undefined) {
      pending.bytes += chunk.length;
      const { pauseAfterBytes, whilePaused } = pending.options;
      if (!pending.paused && pauseAfterBytes !== undefined && pending.bytes >= pauseAfterBytes) {
        pending.paused = true;
        this.socket.pause();
        (whilePaused ?? (async () => {}))().then(
          () => this.socket.resume(),
          (err: Error) => {
            this.fail(err);
            this.socket.destroy();
          },
        );
      }
    }
  }

  private message(type: number, body: Buffer): void {
    const pending = this.pending;
    switch (String.fromCharCode(type)) {
      case 'R': {
        const kind = body.readUInt32BE(0);
        if (kind !== 0) {
          this.fail(new Error(`the server asked for authentication (type ${kind}); no password`));
          this.socket.destroy();
        }
        return;
      }
      case 'D':
        if (pending !== undefined) pending.rows++;
        return;
      case 'C':
        if (pending !== undefined) pending.tag = body.toString('utf8', 0, body.length - 1);
        return;
      case 'E': {
        const error = new PgServerError(errorFields(body));
        if (pending === undefined) this.fail(error);
        else pending.error = error;
        return;
      }
      case 'Z': {
        this.pending = undefined;
        if (pending === undefined) return;
        if (pending.error !== undefined) pending.reject(pending.error);
        else pending.resolve({ rows: pending.rows, tag: pending.tag, bytes: pending.bytes });
        return;
      }
      default:
        // ParameterStatus, BackendKeyData, RowDescription, NoticeResponse, …: not needed here.
        return;
    }
  }
}

/** StartupMessage: Int32 length, Int32 196608 (3.0), then name\0value\0 pairs and a final \0. */
function startupMessage(parameters: Record<string, string>): Buffer {
  const pairs = Object.entries(parameters).flat();
  const body = Buffer.from(`${pairs.join('\0')}\0\0`, 'utf8');
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length, 0);
  header.writeUInt32BE(196608, 4);
  return Buffer.concat([header, body]);
}

/** ErrorResponse body: (field type byte, cstring)* terminated by a zero byte. */
function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const type = String.fromCharCode(body[offset] as number);
    const end = body.indexOf(0, offset + 1);
    if (end < 0) break;
    fields[type] = body.toString('utf8', offset + 1, end);
    offset = end + 1;
  }
  return fields;
}
