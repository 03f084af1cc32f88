/**
 * Resolves a connection's credential at the agent: a stored password arrives with the session,
 * an `env:NAME` reference is read from the agent's own environment (injected, never process.env
 * here), so that kind of secret never leaves the private network.
 */
import { type CredentialSpec, HoopError } from '@hoop/shared';
import type { ResolvedCredential } from './engines/engine.js';

export function resolveCredential(
  spec: CredentialSpec,
  env: Readonly<Record<string, string | undefined>>,
): ResolvedCredential {
  switch (spec.kind) {
    case 'password':
      return { password: spec.value };
    case 'none':
      return { password: undefined };
    case 'env': {
      const value = env[spec.name];
      if (value === undefined || value === '') {
        throw new HoopError(
          'SECRET_UNAVAILABLE',
          `the agent has no ${spec.name} in its environment`,
          {
            hint: `Set ${spec.name} in the agent's environment and restart it.`,
          },
        );
      }
      return { password: value };
    }
  }
}
