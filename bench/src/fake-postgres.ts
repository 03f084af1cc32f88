/**
 * A tiny fake PostgreSQL server and idle client sessions, for the scale case: 1,000 sessions
 * through `hoop connect` would need 1,000 backends of the machine's PostgreSQL (max_connections
 * is usually 100), so the agent's target is this server instead. It answers the startup with
 * AuthenticationOk, a few ParameterStatus, BackendKeyData and ReadyForQuery, then idles; any
 * simple query gets EmptyQueryResponse + ReadyForQuery, Sync gets ReadyForQuery.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

import { connect, createServer, type Server, type Socket } from 'node:net';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const PROTOCOL_3 = 196608;
/** Largest startup or regular message the fake accepts. */
const MAX_MESSAGE = 64 * 1024;

export interface FakePostgres {
  readonly port: number;
  /** Sessions that completed the startup and are still open. */
  readonly sessions: () => number;
  readonly close: () => Promise<void>;
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function cstrings(...values: string[]): Buffer {
  return Buffer.from(values.map((v) => `${v}\0`).join(''), 'utf8');
}

function int32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  for (const [i, v] of values.entries()) b.writeInt32BE(v, i * 4);
  return b;
}

const READY = message('Z', Buffer.from('I'));

/** The server's whole answer to a StartupMessage. */
export function startupReply(backendPid: number): Buffer {
  const parameters: [string, string][] = [
    ['server_version', '15.0 (hoop bench fake)'],
    ['server_encoding', 'UTF8'],
    ['client_encoding', 'UTF8'],
    ['DateStyle', 'ISO, MDY'],
    ['integer_datetimes', 'on'],
    ['standard_conforming_strings', 'on'],
  ];
  return Buffer.concat([
    message('R', int32(0)),
    ...parameters.map(([k, v]) => message('S', cstrings(k, v))),
    message('K', int32(backendPid, 0x5eed)),
    READY,
  ]);
}

export function startFakePostgres(): Promise<FakePostgres> {
  let open = 0;
  let nextPid = 1000;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const headerSize = started ? 5 : 4;
        if (buffer.length < headerSize) return;
        const length = buffer.readInt32BE(started ? 1 : 0);
        const total = started ? length + 1 : length;
        if (length < 4 || total > MAX_MESSAGE) {
          socket.destroy();
          return;
        }
        if (buffer.length < total) return;
        const msg = buffer.subarray(0, total);
        buffer = buffer.subarray(total);
        if (!started) {
          const code = msg.readInt32BE(4);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) socket.write('N');
          else if (code === PROTOCOL_3) {
            started = true;
            open += 1;
            socket.write(startupReply(nextPid++));
          } else {
            // CancelRequest (nothing to cancel) or an unknown protocol.
            socket.end();
          }
          continue;
        }
        const type = String.fromCharCode(msg[0] as number);
        if (type === 'X') socket.end();
        else if (type === 'Q') socket.write(Buffer.concat([message('I', Buffer.alloc(0)), READY]));
        else if (type === 'S') socket.write(READY);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (started) open -= 1;
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({
        port,
        sessions: () => open,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

export interface IdleSession {
  readonly close: () => void;
}

/**
 * Opens a Postgres session to host:port (no TLS, no password) and resolves once the server says
 * ReadyForQuery; rejects on ErrorResponse, a closed socket or `timeoutMs`.
 */
export function openIdleSession(
  host: string,
  port: number,
  user: string,
  database: string,
  timeoutMs: number,
): Promise<IdleSession> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no ReadyForQuery within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => {
      const body = Buffer.concat([
        int32(PROTOCOL_3),
        cstrings('user', user, 'database', database),
        Buffer.from([0]),
      ]);
      socket.write(Buffer.concat([int32(body.length + 4), body]));
    });
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 5) {
        const type = String.fromCharCode(buffer[0] as number);
        const total = buffer.readInt32BE(1) + 1;
        if (buffer.length < total) return;
        const body = buffer.subarray(5, total);
        buffer = buffer.subarray(total);
        if (type === 'E') {
          fail(`server error: ${errorText(body)}`);
          return;
        }
        if (type === 'Z') {
          done = true;
          clearTimeout(timer);
          buffer = Buffer.alloc(0);
          resolve({
            close: () => {
              socket.end(message('X', Buffer.alloc(0)));
              socket.destroySoon();
            },
          });
          return;
        }
      }
    });
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('connection closed before ReadyForQuery'));
  });
}

/** The M (message) field of an ErrorResponse body. */
export function errorText(body: Buffer): string {
  for (const field of body.toString('utf8').split('\0')) {
    if (field.startsWith('M')) return field.slice(1);
  }
  return 'unknown error';
}
