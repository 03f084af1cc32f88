/**
 * What an access request must satisfy before a review exists: the connection uses access reviews,
 * the window is at most `max_duration`, and a justification is given when the policy requires one.
 * A break-glass request also needs the caller in one of `reviews.break_glass` (admins included:
 * being an admin is not being on call) and always a justification.
 */
import { HoopError, type Policy, parseDurationSeconds } from '@hoop/shared';
import { MAX_REASON_LENGTH } from '../grants/claims.js';

export interface AccessRequest {
  readonly connection: string;
  readonly durationSeconds?: number;
  readonly justification?: string;
}

export interface CheckedAccessRequest {
  readonly justification: string | undefined;
  readonly durationSeconds: number;
}

export interface CheckedBreakGlass {
  readonly justification: string;
  readonly durationSeconds: number;
  /** The break-glass groups the caller is in. */
  readonly groups: readonly string[];
}

export function checkAccessRequest(policy: Policy, request: AccessRequest): CheckedAccessRequest {
  const access = policy.reviews?.access;
  if (policy.reviews === undefined || access === undefined) {
    throw new HoopError('INVALID_REQUEST', `${request.connection} does not use access reviews`);
  }
  const justification = checkJustification(request.justification);
  if (justification === undefined && access.justification === 'required') {
    throw new HoopError(
      'INVALID_REQUEST',
      `access to ${request.connection} needs a justification`,
      { hint: 'Say why with `--reason "…"` (field "reason").' },
    );
  }
  const maxSeconds = parseDurationSeconds(access.max_duration) as number;
  const wanted = request.durationSeconds ?? maxSeconds;
  if (wanted > maxSeconds) {
    throw new HoopError(
      'INVALID_REQUEST',
      `${request.connection} allows access windows of at most ${access.max_duration}`,
      { hint: `Ask for less with \`--ttl ${access.max_duration}\` or shorter.` },
    );
  }
  return { justification, durationSeconds: wanted };
}

export function checkBreakGlass(
  policy: Policy,
  caller: { readonly name: string; readonly groups: readonly string[] },
  request: AccessRequest,
): CheckedBreakGlass {
  const name = request.connection;
  const groups = policy.reviews?.break_glass ?? [];
  if (groups.length === 0) {
    throw new HoopError('AUTH_FORBIDDEN', `${name} has no break-glass group`, {
      hint: `Request a review instead: \`hoop grants request ${name} --reason "…"\`.`,
    });
  }
  const mine = groups.filter((g) => caller.groups.includes(g));
  if (mine.length === 0) {
    throw new HoopError(
      'AUTH_FORBIDDEN',
      `${caller.name} is not in a break-glass group of ${name} (${groups.join(', ')})`,
      { hint: `Request a review instead: \`hoop grants request ${name} --reason "…"\`.` },
    );
  }
  const justification = checkJustification(request.justification);
  if (justification === undefined) {
    throw new HoopError('INVALID_REQUEST', `break-glass access to ${name} needs a justification`, {
      hint: 'Say why with `--break-glass --reason "…"` (field "reason"); approvers are told at once.',
    });
  }
  const checked = checkAccessRequest(policy, { ...request, justification });
  return { justification, durationSeconds: checked.durationSeconds, groups: mine };
}

function checkJustification(text: string | undefined): string | undefined {
  const justification = text?.trim() || undefined;
  if (justification !== undefined && justification.length > MAX_REASON_LENGTH) {
    throw new HoopError('INVALID_REQUEST', `reason is longer than ${MAX_REASON_LENGTH} characters`);
  }
  return justification;
}
