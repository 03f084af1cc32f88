/**
 * Opens the agent's own connection to a target: TCP with a connect timeout, then, if the target
 * TLS mode asks for it, SSLRequest and a TLS upgrade when the target answers 'S'.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type Clock, HoopError, type TargetTlsMode } from '@hoop/shared';
import {
  type ErrorResponseFields,
  PgFailure,
  PostgresEngineError,
  protocolError,
} from './errors.js';
import { SqlState, SslResponse } from './messages.js';
import { sslRequest } from './writer.js';

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TargetTlsMode;
  readonly connectTimeoutMs: number;
  /** Overrides the TLS defaults (certificate verification on for `require`, off for `prefer`). */
  readonly tlsOptions?: Pick<ConnectionOptions, 'ca' | 'rejectUnauthorized'> | undefined;
  readonly clock: Clock;
  readonly signal: AbortSignal;
}

/** A connected target socket; `encrypted` tells whether TLS was negotiated. */
export interface TargetConnection {
  readonly socket: Socket | TLSSocket;
  readonly encrypted: boolean;
}

function unreachable(options: DialOptions, reason: string, cause?: unknown): PostgresEngineError {
  const where = `${options.host}:${options.port}`;
  const response: ErrorResponseFields = {
    severity: 'FATAL',
    code: SqlState.sqlclientUnableToEstablishSqlconnection,
    message: `hoop: could not reach target ${where}: ${reason}`,
  };
  return new PostgresEngineError(
    'TARGET_UNREACHABLE',
    PgFailure.dialFailed,
    'target',
    `could not reach target ${where}: ${reason}`,
    { response, cause },
  );
}

function tlsFailure(options: DialOptions, reason: PgFailure, message: string): PostgresEngineError {
  const where = `${options.host}:${options.port}`;
  return new PostgresEngineError(
    'TARGET_UNREACHABLE',
    reason,
    'target',
    `target ${where}: ${message}`,
    {
      response: {
        severity: 'FATAL',
        code: SqlState.sqlclientUnableToEstablishSqlconnection,
        message: `hoop: could not reach target ${where}: ${message}`,
      },
      hint: "Check the connection's TLS mode (disable, prefer, require) against the target's ssl setting.",
    },
  );
}

/** Runs `start` with a deadline and the abort signal; `start` gets a `settle` that runs once. */
function bounded<T>(
  options: DialOptions,
  what: string,
  start: (settle: (err: Error | undefined, value?: T) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let cleanup: () => void = () => {};
    const settle = (err: Error | undefined, value?: T): void => {
      if (done) return;
      done = true;
      options.clock.clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      cleanup();
      if (err !== undefined) reject(err);
      else resolve(value as T);
    };
    const timer = options.clock.setTimeout(
      () => settle(unreachable(options, `${what} timed out after ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    const onAbort = (): void => {
      const reason: unknown = options.signal.reason;
      settle(
        reason instanceof HoopError ? reason : unreachable(options, 'the session was aborted'),
      );
    };
    options.signal.addEventListener('abort', onAbort);
    cleanup = start(settle);
    if (options.signal.aborted) onAbort();
  });
}

function connectTcp(options: DialOptions): Promise<Socket> {
  return bounded<Socket>(options, 'connecting', (settle) => {
    const socket = tcpConnect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.destroy();
      settle(unreachable(options, err.code ?? err.message, err));
    };
    const onConnect = (): void => settle(undefined, socket);
    socket.once('error', onError);
    socket.once('connect', onConnect);
    return () => {
      socket.off('error', onError);
      socket.off('connect', onConnect);
    };
  });
}

/** Sends SSLRequest and reads the one-byte answer; any further byte is a protocol violation. */
function negotiateSsl(options: DialOptions, socket: Socket): Promise<boolean> {
  return bounded<boolean>(options, 'TLS negotiation', (settle) => {
    const onData = (chunk: Buffer): void => {
      socket.pause();
      const answer = chunk[0];
      if (chunk.length !== 1) {
        // Bytes after the answer, before the TLS handshake, could be injected (CVE-2021-23214).
        settle(
          protocolError('target', PgFailure.malformed, 'unexpected data after the SSL answer'),
        );
      } else if (answer === SslResponse.accept) {
        settle(undefined, true);
      } else if (answer === SslResponse.refuse) {
        settle(undefined, false);
      } else {
        settle(protocolError('target', PgFailure.malformed, 'invalid answer to SSLRequest'));
      }
    };
    const onError = (err: Error): void => settle(unreachable(options, err.message, err));
    const onClose = (): void =>
      settle(unreachable(options, 'connection closed during TLS negotiation'));
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(sslRequest());
    return () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
  });
}

function upgradeTls(options: DialOptions, socket: Socket): Promise<TLSSocket> {
  return bounded<TLSSocket>(options, 'TLS handshake', (settle) => {
    const rejectUnauthorized = options.tlsOptions?.rejectUnauthorized ?? options.tls === 'require';
    const tlsSocket = tlsConnect({
      socket,
      ...(isIP(options.host) === 0 ? { servername: options.host } : {}),
      rejectUnauthorized,
      ...(options.tlsOptions?.ca !== undefined ? { ca: options.tlsOptions.ca } : {}),
    });
    const onError = (err: Error): void => {
      tlsSocket.destroy();
      settle(tlsFailure(options, PgFailure.tlsFailed, `TLS handshake failed: ${err.message}`));
    };
    const onSecure = (): void => settle(undefined, tlsSocket);
    tlsSocket.once('error', onError);
    tlsSocket.once('secureConnect', onSecure);
    return () => {
      tlsSocket.off('error', onError);
      tlsSocket.off('secureConnect', onSecure);
    };
  });
}

/** Dials the target. Rejects with TARGET_UNREACHABLE (or TARGET_PROTOCOL_ERROR) when it cannot. */
export async function dialTarget(options: DialOptions): Promise<TargetConnection> {
  const socket = await connectTcp(options);
  if (options.tls === 'disable') return { socket, encrypted: false };
  try {
    const accepted = await negotiateSsl(options, socket);
    if (!accepted) {
      if (options.tls === 'require') {
        throw tlsFailure(
          options,
          PgFailure.tlsRefused,
          'TLS is required but the target does not offer it',
        );
      }
      return { socket, encrypted: false };
    }
    return { socket: await upgradeTls(options, socket), encrypted: true };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
