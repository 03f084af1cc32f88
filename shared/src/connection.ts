/** What a connection is: the target an agent dials and the credential it injects. */

export const connectionTypes = ['postgres'] as const;
export type ConnectionType = (typeof connectionTypes)[number];

export function isConnectionType(value: unknown): value is ConnectionType {
  return typeof value === 'string' && (connectionTypes as readonly string[]).includes(value);
}

/**
 * How the agent gets the target's secret. `password` carries the value itself (decrypted by the
 * broker only to send it to the owning agent at session open); `env` names a variable in the
 * agent's own environment, so the secret never leaves the private network.
 */
export type CredentialSpec =
  | { readonly kind: 'password'; readonly value: string }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'none' };

/** Target TLS mode, as libpq's sslmode: `disable`, `prefer` (default) or `require`. */
export type TargetTlsMode = 'disable' | 'prefer' | 'require';

export interface ConnectionTarget {
  readonly name: string;
  readonly type: ConnectionType;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly tls: TargetTlsMode;
  readonly credential: CredentialSpec;
}

/** A credential reference as typed by a user: `env:NAME`. */
export function parseCredentialRef(ref: string): CredentialSpec | undefined {
  const match = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref);
  return match?.[1] === undefined ? undefined : { kind: 'env', name: match[1] };
}
