/**
 * Test helpers for the Postgres engine (used by *.test.ts only): a TCP listener on port 0 whose
 * connections are served by an engine, a raw protocol client for byte-level tests, and `pg`
 * client helpers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AuditSink,
  type ConnectionTarget,
  createLogger,
  defaultPolicy,
  HoopError,
  type Logger,
  type Policy,
  silentLogger,
  type TargetTlsMode,
} from '@hoop/shared';
import pg from 'pg';
import type { PostgresEngine } from './engine.js';
import { PostgresEngineError } from './errors.js';
import { PacketReader, type PgMessage, parseStartupPacket, type StartupPacket } from './reader.js';
import { cancelRequest } from './writer.js';

export type SessionOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: unknown };

export interface EngineServer {
  readonly port: number;
  /** How the `index`-th accepted session (0-based) ended. */
  outcome(index: number): Promise<SessionOutcome>;
  /** Aborts every session's signal. */
  abortAll(reason?: unknown): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export function pgTarget(fields: {
  host: string;
  port: number;
  user?: string;
  database?: string;
  tls?: TargetTlsMode;
}): ConnectionTarget {
  return {
    name: 'test-pg',
    type: 'postgres',
    host: fields.host,
    port: fields.port,
    user: fields.user ?? 'postgres',
    database: fields.database ?? 'postgres',
    tls: fields.tls ?? 'disable',
    credential: { kind: 'none' },
  };
}

interface Deferred {
  promise: Promise<SessionOutcome>;
  resolve: (outcome: SessionOutcome) => void;
}

function deferred(): Deferred {
  let resolve!: (outcome: SessionOutcome) => void;
  const promise = new Promise<SessionOutcome>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export async function startEngineServer(options: {
  engine: PostgresEngine;
  target: ConnectionTarget;
  password: string | undefined;
  /** Wraps the accepted socket, e.g. to tap the client's bytes. */
  wrapClient?: (socket: Socket) => Duplex;
  /** Session logger; silent by default. */
  logger?: Logger;
  /** The connection policy; the default policy (recording only) when omitted. */
  policy?: Policy;
  /** Receives the engine's audit events. */
  audit?: AuditSink;
  /** The broker's admission of session `index` (EngineSession.admitted); default: at once. */
  admitted?: (index: number) => Promise<void>;
}): Promise<EngineServer> {
  const outcomes: Deferred[] = [];
  const slot = (index: number): Deferred => {
    for (let i = outcomes.length; i <= index; i++) outcomes.push(deferred());
    return outcomes[index] as Deferred;
  };
  const controller = new AbortController();
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    const index = accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const client = options.wrapClient?.(socket) ?? socket;
    options.engine
      .serve({
        sessionId: `test-${index}`,
        target: options.target,
        credential: { password: options.password },
        client,
        logger: options.logger ?? silentLogger,
        signal: controller.signal,
        policy: options.policy ?? defaultPolicy,
        audit: options.audit ?? (() => {}),
        admitted: options.admitted?.(index) ?? Promise.resolve(),
      })
      .then(
        () => slot(index).resolve({ ok: true }),
        (error: unknown) => slot(index).resolve({ ok: false, error }),
      );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = address !== null && typeof address === 'object' ? address.port : 0;
  const close = async (): Promise<void> => {
    controller.abort();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all(outcomes.slice(0, accepted).map((d) => d.promise));
  };
  return {
    port,
    outcome: (index) => slot(index).promise,
    abortAll: (reason?: unknown) => controller.abort(reason),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A byte-level client: send raw packets, read the answer byte by byte or message by message. */
export class RawClient {
  readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.notify();
    });
    socket.on('error', () => {});
    this.closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.ended = true;
        this.notify();
        resolve();
      });
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /** Wraps an accepted socket, e.g. in a fake target server. */
  static wrap(socket: Socket): RawClient {
    return new RawClient(socket);
  }

  /** Reads one untyped startup-phase packet (StartupMessage, SSLRequest, CancelRequest). */
  async readStartup(timeoutMs = 10_000): Promise<StartupPacket> {
    const length = (await this.readBytes(4, timeoutMs)).readInt32BE(0);
    const rest = await this.readBytes(length - 4, timeoutMs);
    const lengthField = Buffer.alloc(4);
    lengthField.writeInt32BE(length, 0);
    return parseStartupPacket(Buffer.concat([lengthField, rest]), 'client');
  }

  /** Every byte received and not yet read. */
  get pending(): Buffer {
    return this.buffer;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async waitFor(bytes: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < bytes) {
      if (this.ended)
        throw new Error(`connection closed with ${this.buffer.length}/${bytes} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${bytes} bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async readBytes(count: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.waitFor(count, timeoutMs);
    const out = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return out;
  }

  async readMessage(timeoutMs = 10_000): Promise<PgMessage> {
    const header = await this.readBytes(5, timeoutMs);
    const body = await this.readBytes(header.readInt32BE(1) - 4, timeoutMs);
    const reader = new PacketReader({
      side: 'target',
      maxStartupBytes: 8,
      maxMessageBytes: 64 * 1024 * 1024,
    });
    reader.push(Buffer.concat([header, body]));
    const message = reader.nextMessage();
    if (message === undefined) throw new Error('incomplete message');
    return message;
  }

  /** Reads messages until one with `code` arrives; returns all of them. */
  async readUntil(code: number, timeoutMs = 10_000): Promise<PgMessage[]> {
    const messages: PgMessage[] = [];
    for (;;) {
      const message = await this.readMessage(timeoutMs);
      messages.push(message);
      if (message.code === code) return messages;
    }
  }

  /** Resolves when the server closed the connection, failing after `timeoutMs`. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('connection not closed in time')), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A pg client through the engine; it claims another user and database, and has no password. */
export async function connectThrough(
  port: number,
  options: { applicationName?: string } = {},
): Promise<{ client: pg.Client; passwordAsked: () => boolean }> {
  let asked = false;
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'not-the-target-user',
    database: 'not-the-target-db',
    password: () => {
      asked = true;
      return 'client-side-password';
    },
    application_name: options.applicationName ?? 'hoop-engine-test',
    connectionTimeoutMillis: 15_000,
  });
  client.on('error', () => {});
  await client.connect();
  return { client, passwordAsked: () => asked };
}

/** Connects expecting failure; returns the error the pg client got. */
export async function connectError(port: number): Promise<Error & { code?: string }> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'x',
    database: 'y',
    connectionTimeoutMillis: 15_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    await client.end().catch(() => {});
  }
  throw new Error('connect unexpectedly succeeded');
}

export function assertFailed(
  outcome: SessionOutcome,
  code: string,
  reason?: string,
): PostgresEngineError | HoopError {
  assert.equal(outcome.ok, false, 'serve() should have rejected');
  const error = (outcome as { error: unknown }).error;
  assert.ok(error instanceof HoopError, `serve() rejected with ${String(error)}`);
  assert.equal(error.code, code);
  if (reason !== undefined) {
    assert.ok(error instanceof PostgresEngineError);
    assert.equal(error.reason, reason);
  }
  return error;
}

/**
 * Runs `select pg_sleep(30)` on `client`, waits until `watcher` sees it running, cancels it with
 * a raw CancelRequest through the engine using the key `client` received, and checks it fails
 * with 57014 quickly and the session stays usable.
 */
export async function assertCancelWorks(
  port: number,
  client: pg.Client,
  watcher: pg.Client,
): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const started = Date.now();
  const query = client.query('select pg_sleep(30)');
  query.catch(() => {});
  for (let i = 0; ; i++) {
    const { rows } = await watcher.query(
      "select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'",
    );
    if (rows[0].n === 1) break;
    assert.ok(i < 100, 'the query never started');
    await sleep(50);
  }
  const raw = await RawClient.connect(port);
  const key = Buffer.alloc(4);
  key.writeInt32BE(secretKey, 0);
  raw.send(cancelRequest(processID, key));
  await raw.waitClosed();
  assert.equal(raw.pending.length, 0, 'a CancelRequest gets no answer');
  await assert.rejects(query, (err: Error & { code?: string }) => err.code === '57014');
  assert.ok(Date.now() - started < 10_000, `cancel took ${Date.now() - started} ms`);
  const { rows } = await client.query('select 1 as x');
  assert.equal(rows[0].x, 1);
}

/** A TCP port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address !== null && typeof address === 'object' ? address.port : 1;
}

/** A logger that keeps every line (JSON) for assertions. */
export function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}
