/** What every API module gets: the store, the hub, identity and audit, and who is calling. */
import type { IncomingMessage } from 'node:http';
import { HoopError } from '@hoop/shared';
import type { AuditRecorder } from '../audit/record.js';
import { bearerToken } from '../http/auth.js';
import type { Caller } from '../identity/caller.js';
import type { IdentityService } from '../identity/service.js';
import type { Store } from '../store/index.js';
import type { Hub } from '../tunnel/hub.js';

export type { Caller };

export interface ApiDeps {
  readonly store: Store;
  readonly hub: Hub;
  readonly maxTokenBytes: number;
  readonly version: string;
  /** Turns bearers into callers (tokens, API keys, OIDC logins, CI tokens); the authorizer. */
  readonly identity: IdentityService;
  readonly audit: AuditRecorder;
}

/**
 * Who is calling: a user token, an API key, an OIDC login's token or a CI token exchanged under
 * a trust policy. AUTH_REQUIRED / AUTH_INVALID_TOKEN (401) or TRUST_NO_MATCH (403) otherwise.
 */
export async function authenticate(deps: ApiDeps, req: IncomingMessage): Promise<Caller> {
  return deps.identity.resolve(bearerToken(req, deps.maxTokenBytes));
}

export async function requireAdmin(deps: ApiDeps, req: IncomingMessage): Promise<Caller> {
  const caller = await authenticate(deps, req);
  if (caller.role !== 'admin' || caller.grant !== undefined) {
    throw new HoopError('AUTH_FORBIDDEN', `${caller.name} is not an admin`);
  }
  return caller;
}

export function stringField(body: Record<string, unknown>, key: string, required: true): string;
export function stringField(
  body: Record<string, unknown>,
  key: string,
  required?: false,
): string | undefined;
export function stringField(
  body: Record<string, unknown>,
  key: string,
  required = false,
): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (required) throw new HoopError('INVALID_REQUEST', `field "${key}" is required`);
    return undefined;
  }
  if (typeof value !== 'string')
    throw new HoopError('INVALID_REQUEST', `field "${key}" must be a string`);
  return value;
}
