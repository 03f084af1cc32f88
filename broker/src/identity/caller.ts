/**
 * Who is asking: every authenticated request and tunnel resolves to one Caller, whatever proved
 * it (a user token, an API key, an OIDC login, a CI token exchange or a grant).
 */

export const actions = ['connect', 'exec', 'approve', 'admin', 'audit'] as const;
export type Action = (typeof actions)[number];

export interface CallerGrant {
  /** The grant's jti. */
  readonly id: string;
  readonly connection: string;
  readonly actions: readonly string[];
  /** epoch ms */
  readonly expiresAt: number;
}

export interface Caller {
  readonly userId: string;
  readonly name: string;
  readonly role: 'admin' | 'user';
  readonly kind: 'person' | 'service';
  readonly groups: readonly string[];
  /** How the caller proved itself. */
  readonly via: 'token' | 'apikey' | 'oidc' | 'ci' | 'grant';
  /** Set when the caller presented a grant: it may only use that connection. */
  readonly grant?: CallerGrant;
}

/**
 * Decides whether `caller` may perform `action` on a connection. Implementations: admins may do
 * anything; others through access rules (group → connection name or tag → actions).
 */
export type Authorizer = (
  caller: Caller,
  connection: { readonly name: string; readonly tags?: readonly string[] },
  action: Action,
) => Promise<boolean>;

/** The authorizer before access rules exist: admins and grant holders (for their connection). */
export const adminOnlyAuthorizer: Authorizer = async (caller, connection) =>
  caller.role === 'admin' || caller.grant?.connection === connection.name;
