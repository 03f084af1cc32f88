/**
 * Authenticates the agent to the target after its StartupMessage, with the connection's
 * credential: trust (AuthenticationOk), cleartext password, MD5 and SCRAM-SHA-256. Returns once
 * the target sent AuthenticationOk; every other outcome is a typed PostgresEngineError whose
 * client response never contains the password.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Logger } from '@hoop/shared';
import { PgFailure, PostgresEngineError, protocolError } from './errors.js';
import { AuthCode, BackendCode, ErrorField, SCRAM_SHA_256, SqlState } from './messages.js';
import { type PgMessage, parseErrorFields, readCString } from './reader.js';
import { ScramSha256Client } from './scram.js';
import type { StreamSource } from './source.js';
import { passwordMessage, saslInitialResponse, saslResponse } from './writer.js';

export interface TargetAuthOptions {
  /** The role the agent logs in as (needed for MD5). */
  readonly user: string;
  readonly password: string | undefined;
  readonly logger: Logger;
  readonly maxScramIterations?: number;
}

/** Which authentication the target asked for (for logs and audit). */
export type TargetAuthMethod = 'trust' | 'cleartext' | 'md5' | 'scram-sha-256';

/** The ErrorResponse fields of a target that refused the session, as a typed error. */
export function targetRefusal(
  body: Buffer,
  phase: 'authentication' | 'startup',
): PostgresEngineError {
  const fields = parseErrorFields(body);
  const sqlstate = fields.get(ErrorField.code) ?? SqlState.invalidAuthorizationSpecification;
  const message = fields.get(ErrorField.message) ?? 'no message';
  const credentialClass = sqlstate.startsWith('28');
  if (credentialClass) {
    return new PostgresEngineError(
      'TARGET_AUTH_FAILED',
      PgFailure.authRejected,
      'target',
      `the target rejected the connection's credential (${sqlstate}): ${message}`,
      {
        response: {
          severity: 'FATAL',
          code: sqlstate,
          message: `hoop: the target rejected the connection's credential: ${message}`,
          hint: "Ask an admin to update the connection's credential.",
        },
      },
    );
  }
  // Not a credential problem: no such database, too many connections, shutting down, …
  const unavailable = /^(08|53|57)/.test(sqlstate);
  return new PostgresEngineError(
    unavailable ? 'TARGET_UNREACHABLE' : 'TARGET_AUTH_FAILED',
    PgFailure.sessionRefused,
    'target',
    `the target refused the session during ${phase} (${sqlstate}): ${message}`,
    {
      response: {
        severity: 'FATAL',
        code: sqlstate,
        message: `hoop: the target refused the session: ${message}`,
        detail: fields.get(ErrorField.detail),
        hint: fields.get(ErrorField.hint),
      },
      hint: unavailable
        ? 'The target is up but not accepting this session now; try again later.'
        : "Check the connection's user and database against the target.",
    },
  );
}

function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** MD5 response: `md5` + md5hex(md5hex(password + user) + salt). */
export function md5PasswordHash(user: string, password: string, salt: Buffer): string {
  const inner = md5Hex(password + user);
  return `md5${md5Hex(Buffer.concat([Buffer.from(inner, 'utf8'), salt]))}`;
}

function requirePassword(options: TargetAuthOptions, method: string): string {
  if (options.password !== undefined) return options.password;
  throw new PostgresEngineError(
    'TARGET_AUTH_FAILED',
    PgFailure.passwordRequired,
    'target',
    `the target asks for ${method} authentication but the connection has no password`,
    {
      response: {
        severity: 'FATAL',
        code: SqlState.invalidAuthorizationSpecification,
        message: `hoop: the target rejected the connection's credential: it asks for a password and the connection has none`,
      },
      hint: 'Give the connection a password (or an env: reference) with `hoop admin connections create`.',
    },
  );
}

function unsupported(what: string): PostgresEngineError {
  return new PostgresEngineError('TARGET_AUTH_FAILED', PgFailure.authUnsupported, 'target', what, {
    response: {
      severity: 'FATAL',
      code: SqlState.featureNotSupported,
      message: `hoop: ${what}`,
    },
    hint: "Configure the target's pg_hba.conf for scram-sha-256, md5, password or trust for the agent.",
  });
}

/** SASL mechanism list: strings, ended by an empty one. */
function parseMechanisms(body: Buffer): string[] {
  const mechanisms: string[] = [];
  let offset = 4;
  while (offset < body.length && body[offset] !== 0) {
    const name = readCString(body, offset);
    if (name === undefined) break;
    mechanisms.push(name.value);
    offset = name.next;
  }
  return mechanisms;
}

/**
 * Runs the authentication exchange. `source` reads the target; `target` is where responses go.
 * Resolves with the method used once the target sent AuthenticationOk.
 */
export async function authenticateToTarget(
  source: StreamSource,
  target: Writable,
  options: TargetAuthOptions,
): Promise<TargetAuthMethod> {
  let method: TargetAuthMethod = 'trust';
  let scram: ScramSha256Client | undefined;
  for (;;) {
    const message: PgMessage = await source.message();
    if (message.code === BackendCode.errorResponse) {
      throw targetRefusal(message.body, 'authentication');
    }
    if (message.code === BackendCode.noticeResponse) continue;
    if (message.code === BackendCode.negotiateProtocolVersion) continue;
    if (message.code !== BackendCode.authentication || message.body.length < 4) {
      throw protocolError(
        'target',
        PgFailure.unexpectedMessage,
        `unexpected message type 0x${message.code.toString(16)} during authentication`,
      );
    }
    const authCode = message.body.readInt32BE(0);
    switch (authCode) {
      case AuthCode.ok:
        if (scram !== undefined && !scram.verified) {
          throw protocolError(
            'target',
            PgFailure.unexpectedMessage,
            'the target ended SCRAM authentication without proving it knows the password',
          );
        }
        options.logger.debug('authenticated to target', { method });
        return method;
      case AuthCode.cleartextPassword:
        method = 'cleartext';
        target.write(passwordMessage(requirePassword(options, 'cleartext password')));
        break;
      case AuthCode.md5Password: {
        method = 'md5';
        if (message.body.length !== 8) {
          throw protocolError('target', PgFailure.malformed, 'MD5 request without a 4-byte salt');
        }
        const password = requirePassword(options, 'MD5 password');
        target.write(
          passwordMessage(md5PasswordHash(options.user, password, message.body.subarray(4))),
        );
        break;
      }
      case AuthCode.sasl: {
        const mechanisms = parseMechanisms(message.body);
        if (!mechanisms.includes(SCRAM_SHA_256)) {
          throw unsupported(
            `the target offers SASL mechanisms hoop does not speak: ${mechanisms.join(', ')}`,
          );
        }
        if (scram !== undefined) {
          throw protocolError(
            'target',
            PgFailure.unexpectedMessage,
            'the target restarted SASL authentication',
          );
        }
        method = 'scram-sha-256';
        scram = new ScramSha256Client(requirePassword(options, 'SCRAM-SHA-256'), {
          ...(options.maxScramIterations !== undefined
            ? { maxIterations: options.maxScramIterations }
            : {}),
        });
        target.write(saslInitialResponse(SCRAM_SHA_256, Buffer.from(scram.clientFirst(), 'utf8')));
        break;
      }
      case AuthCode.saslContinue: {
        if (scram === undefined) {
          throw protocolError(
            'target',
            PgFailure.unexpectedMessage,
            'SASLContinue before SASL started',
          );
        }
        const clientFinal = await scram.clientFinal(message.body.toString('utf8', 4));
        target.write(saslResponse(Buffer.from(clientFinal, 'utf8')));
        break;
      }
      case AuthCode.saslFinal:
        if (scram === undefined) {
          throw protocolError(
            'target',
            PgFailure.unexpectedMessage,
            'SASLFinal before SASL started',
          );
        }
        scram.verifyServerFinal(message.body.toString('utf8', 4));
        break;
      default:
        throw unsupported(
          `the target asks for an authentication method hoop does not speak (code ${authCode})`,
        );
    }
  }
}
