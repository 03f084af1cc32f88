/** What every API module gets: the store, the hub, and who is calling. */
import type { IncomingMessage } from 'node:http';
import { HoopError } from '@hoop/shared';
import { bearerToken } from '../http/auth.js';
import type { Store } from '../store/index.js';
import type { Hub } from '../tunnel/hub.js';

export interface Caller {
  readonly userId: string;
  readonly name: string;
  readonly role: 'admin' | 'user';
}

export interface ApiDeps {
  readonly store: Store;
  readonly hub: Hub;
  readonly maxTokenBytes: number;
  readonly version: string;
}

export async function authenticate(deps: ApiDeps, req: IncomingMessage): Promise<Caller> {
  const token = bearerToken(req, deps.maxTokenBytes);
  const user = await deps.store.authenticateUserToken(token);
  if (user === undefined) {
    throw new HoopError('AUTH_INVALID_TOKEN', 'the token is unknown, expired or revoked');
  }
  return user;
}

export async function requireAdmin(deps: ApiDeps, req: IncomingMessage): Promise<Caller> {
  const caller = await authenticate(deps, req);
  if (caller.role !== 'admin') {
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
