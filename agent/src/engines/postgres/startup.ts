/**
 * The client side of the startup phase, with the agent playing the server: answer 'N' to
 * SSLRequest / GSSENCRequest (the client↔agent hop is the tunnel, so the client continues in
 * plaintext), then take a CancelRequest or a StartupMessage. The client's user, database and
 * password are ignored: the target's come from the connection.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import type { Writable } from 'node:stream';
import type { ConnectionTarget } from '@hoop/shared';
import { PgFailure, PostgresEngineError, protocolError } from './errors.js';
import { SqlState } from './messages.js';
import type { StreamSource } from './source.js';
import { sslAnswer } from './writer.js';

export type ClientHello =
  | { readonly kind: 'cancel'; readonly processId: number; readonly secretKey: Buffer }
  | {
      readonly kind: 'startup';
      /** Minor protocol version the client asked for (hoop answers 3.0). */
      readonly minorVersion: number;
      /** `_pq_.` protocol options the client asked for; hoop recognizes none. */
      readonly protocolOptions: readonly string[];
      /** Parameters forwarded to the target (application_name, client_encoding, options, …). */
      readonly forwarded: ReadonlyMap<string, string>;
    };

/** Parameters the agent decides itself, or refuses, instead of forwarding. */
const NOT_FORWARDED = new Set(['user', 'database', 'password', 'replication']);

const FALSE_VALUES = new Set(['false', 'off', 'no', '0']);

/**
 * Reads the client's opening packets. Resolves undefined when the client closes before starting
 * (e.g. after an SSLRequest it did not like the answer to).
 */
export async function readClientStartup(
  source: StreamSource,
  client: Writable,
): Promise<ClientHello | undefined> {
  let sslDone = false;
  let gssDone = false;
  for (;;) {
    const packet = await source.startup();
    if (packet === undefined) return undefined;
    switch (packet.kind) {
      case 'ssl-request':
      case 'gssenc-request': {
        const first = packet.kind === 'ssl-request' ? !sslDone : !gssDone;
        if (!first) {
          throw protocolError('client', PgFailure.unexpectedMessage, `repeated ${packet.kind}`);
        }
        if (packet.kind === 'ssl-request') sslDone = true;
        else gssDone = true;
        client.write(sslAnswer(false));
        break;
      }
      case 'cancel-request':
        return { kind: 'cancel', processId: packet.processId, secretKey: packet.secretKey };
      case 'startup':
        return startupHello(packet.minorVersion, packet.parameters);
    }
  }
}

function startupHello(minorVersion: number, parameters: ReadonlyMap<string, string>): ClientHello {
  const replication = parameters.get('replication');
  if (replication !== undefined && !FALSE_VALUES.has(replication.toLowerCase())) {
    throw new PostgresEngineError(
      'AUTH_FORBIDDEN',
      PgFailure.replicationRefused,
      'client',
      'replication connections are not allowed through hoop',
      {
        response: {
          severity: 'FATAL',
          code: SqlState.insufficientPrivilege,
          message: 'hoop: replication connections are not allowed through hoop',
        },
        hint: 'Connect without the replication parameter.',
      },
    );
  }
  const forwarded = new Map<string, string>();
  const protocolOptions: string[] = [];
  for (const [name, value] of parameters) {
    if (name.startsWith('_pq_.')) protocolOptions.push(name);
    else if (!NOT_FORWARDED.has(name)) forwarded.set(name, value);
  }
  return { kind: 'startup', minorVersion, protocolOptions, forwarded };
}

/** The StartupMessage parameters the agent sends the target: its user and database first. */
export function targetStartupParameters(
  target: Pick<ConnectionTarget, 'user' | 'database'>,
  forwarded: ReadonlyMap<string, string>,
): Array<readonly [string, string]> {
  return [['user', target.user], ['database', target.database], ...forwarded];
}
