/**
 * Getting a grant for a connection, the one way `hoop grants request` and `hoop connect` share:
 * POST /api/v1/grants, then, when the connection needs an access review, wait (spinner with the
 * review id and the approver's command) until it is approved, or with `--no-wait` print the
 * review id and stop with PENDING_APPROVAL (exit 7). Break-glass gets the grant at once.
 * `pickUpReview` does the same from an existing review id.
 */
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import type { CommandContext } from '../context.js';
import { type ReviewView, waitForReview } from './reviews.js';

export const DEFAULT_GRANT_TTL = '10m';

/** The options both commands take, with the same names. */
export interface AccessOptions {
  ttl: string;
  reason?: string;
  wait: boolean;
  pollInterval: string;
  breakGlass?: boolean;
}

export function accessOptions(command: Command): Command {
  return command
    .option(
      '--ttl <ttl>',
      'lifetime: seconds or 90s, 10m, 2h (capped per connection)',
      DEFAULT_GRANT_TTL,
    )
    .option('--reason <text>', 'why you need access (recorded in the audit log)')
    .option('--no-wait', 'when approval is needed: print the review id and exit 7 (pending)')
    .option('--poll-interval <ms>', 'how often to check a pending review', '1000')
    .option(
      '--break-glass',
      'take access now without approvers (members of a break-glass group; needs --reason)',
    );
}

/** A grant the caller holds, and the review it came from, if any. */
export interface ObtainedGrant {
  readonly id: string;
  readonly grant: string;
  readonly expiresAt: string;
  readonly connection: string;
  readonly capped: boolean;
  readonly review?: { readonly id: string; readonly breakGlass: boolean };
}

interface MintedAnswer {
  id: string;
  grant: string;
  expiresAt: string;
  connection: string;
  capped: boolean;
  review?: ReviewView;
}

export async function requestAccess(
  c: CommandContext,
  api: ApiClient,
  connection: string,
  opts: AccessOptions,
): Promise<ObtainedGrant> {
  const answer = await api.post<MintedAnswer | { review: { id: string; status: string } }>(
    '/api/v1/grants',
    {
      connection,
      ttl: opts.ttl,
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
      ...(opts.breakGlass === true ? { breakGlass: true } : {}),
    },
  );
  if ('grant' in answer) {
    const { review } = answer;
    if (review?.breakGlass === true) {
      c.out.progress(
        `⚠ break-glass: review ${review.id} approved at once in your name; approvers are told, and may revoke it (hoop reviews revoke ${review.id})`,
      );
    }
    return {
      id: answer.id,
      grant: answer.grant,
      expiresAt: answer.expiresAt,
      connection: answer.connection,
      capped: answer.capped,
      ...(review === undefined ? {} : { review: { id: review.id, breakGlass: review.breakGlass } }),
    };
  }
  return waitForGrant(c, api, connection, answer.review, opts);
}

/** The grant of an existing review (`hoop connect --review ID`), waiting while it is pending. */
export async function pickUpReview(
  c: CommandContext,
  api: ApiClient,
  connection: string,
  id: string,
  opts: Pick<AccessOptions, 'wait' | 'pollInterval'>,
): Promise<ObtainedGrant> {
  const review = await api.get<ReviewView>(`/api/v1/reviews/${encodeURIComponent(id)}`);
  if (review.kind !== 'access') {
    throw new HoopError('INVALID_REQUEST', `review ${id} is for one statement, not for access`);
  }
  if (review.connection !== connection) {
    throw new HoopError(
      'GRANT_WRONG_CONNECTION',
      `review ${id} is for ${review.connection}, not ${connection}`,
    );
  }
  return waitForGrant(c, api, connection, review, opts);
}

async function waitForGrant(
  c: CommandContext,
  api: ApiClient,
  connection: string,
  review: { id: string; status: string },
  opts: Pick<AccessOptions, 'wait' | 'pollInterval'>,
): Promise<ObtainedGrant> {
  const { id, status } = review;
  if (status === 'pending' && !opts.wait) {
    c.out.data({ review: { id, status } }, () => c.out.line(id));
    throw new HoopError('PENDING_APPROVAL', `access to ${connection} waits for review ${id}`, {
      hint: `An approver runs \`hoop reviews approve ${id}\`; then \`hoop reviews show ${id}\`.`,
    });
  }
  const interval = Number(opts.pollInterval);
  const approved = await waitForReview(api, id, {
    intervalMs: Number.isFinite(interval) && interval >= 50 ? interval : 1000,
    json: c.out.json,
  });
  if (status === 'pending') {
    c.out.progress(
      `✔ review ${id} approved by ${approved.approvals.map((a) => a.user).join(', ')}`,
    );
  }
  return {
    id: approved.grant.id,
    grant: approved.grant.grant,
    expiresAt: approved.grant.expiresAt,
    connection,
    capped: false,
    review: { id, breakGlass: approved.breakGlass },
  };
}
