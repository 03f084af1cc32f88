/**
 * `hoop reviews list|show|approve|reject|revoke`: just-in-time approvals. Also `waitForReview`,
 * which `hoop grants request` and `hoop connect` use to wait (spinner on stderr) until an
 * approver decides.
 */
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

export interface ReviewView {
  id: string;
  kind: string;
  status: string;
  connection: string;
  requester: string;
  justification: string | null;
  durationSeconds: number | null;
  statement: string | null;
  approvals: { user: string; at: string; reason?: string; groups?: string[] }[];
  minApprovals: number;
  approvers: string[];
  requireAllGroups?: boolean;
  missingGroups?: string[];
  breakGlass: boolean;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  grantId: string | null;
  approveWith: string;
  grant?: { id: string; grant: string; expiresAt: string };
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Polls the review until it is decided. Approved with a grant: returns it. Rejected, expired or
 * revoked: AUTH_FORBIDDEN saying who decided and why.
 */
export async function waitForReview(
  api: ApiClient,
  id: string,
  options: { intervalMs: number; json: boolean; stderr?: NodeJS.WriteStream },
): Promise<ReviewView & { grant: NonNullable<ReviewView['grant']> }> {
  const stderr = options.stderr ?? process.stderr;
  const tty = !options.json && stderr.isTTY === true;
  const line = `waiting for approval: review ${id} (an approver runs: hoop reviews approve ${id})`;
  if (!options.json && !tty) stderr.write(`… ${line}\n`);
  // Machines get the same news as one JSON line on stderr (stdout stays the command's result).
  if (options.json) {
    stderr.write(
      `${JSON.stringify({ event: 'waiting', review: { id, status: 'pending' }, approveWith: `hoop reviews approve ${id}` })}\n`,
    );
  }
  let frame = 0;
  try {
    for (;;) {
      if (tty) stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} ${line}`);
      const review = await api.get<ReviewView>(`/api/v1/reviews/${encodeURIComponent(id)}`);
      if (review.status === 'approved' && review.grant !== undefined) {
        return review as ReviewView & { grant: NonNullable<ReviewView['grant']> };
      }
      if (review.status !== 'pending' && review.status !== 'approved') {
        throw new HoopError(
          'AUTH_FORBIDDEN',
          `review ${id} was ${review.status}${review.decidedBy === null || review.decidedBy === 'hoop' ? '' : ` by ${review.decidedBy}`}${review.decisionReason === null ? '' : `: ${review.decisionReason}`}`,
          { hint: 'Request access again, or ask an approver why.' },
        );
      }
      if (review.status === 'approved' && review.grantId !== null) {
        throw new HoopError(
          'GRANT_REVOKED',
          `review ${id} is approved but gives you no usable grant`,
          {
            hint: 'Only its requester gets the grant, until the window ends; request access again.',
          },
        );
      }
      await new Promise((r) => setTimeout(r, options.intervalMs));
    }
  } finally {
    if (tty) stderr.write('\r\x1b[2K');
  }
}

export function reviewsCommand(program: Command, ctx: () => CommandContext): void {
  const reviews = program
    .command('reviews')
    .description('just-in-time approvals: list, show, approve, reject, revoke');

  reviews
    .command('list')
    .description('reviews you requested or may approve (admins: all)')
    .option('--status <status>', 'pending | approved | rejected | expired | revoked')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (opts: { status?: string; limit: string }) => {
      const c = ctx();
      const query = new URLSearchParams({ limit: opts.limit });
      if (opts.status !== undefined) query.set('status', opts.status);
      const list = await (await c.api()).get<ReviewView[]>(`/api/v1/reviews?${query}`);
      c.out.data(list, () =>
        c.out.line(
          list.length === 0
            ? 'No reviews.'
            : table(
                list.map((r) => ({
                  ...r,
                  status: r.breakGlass ? `${r.status} (break-glass)` : r.status,
                  approvals: `${r.approvals.length}/${r.minApprovals}${(r.missingGroups ?? []).length > 0 ? ` (needs ${(r.missingGroups ?? []).join(', ')})` : ''}`,
                  duration: r.durationSeconds === null ? null : `${r.durationSeconds}s`,
                })),
                [
                  'id',
                  'kind',
                  'connection',
                  'requester',
                  'status',
                  'approvals',
                  'duration',
                  'justification',
                ],
              ),
        ),
      );
    });

  reviews
    .command('show <id>')
    .description('one review with its approvals')
    .action(async (id: string) => {
      const c = ctx();
      const review = await (await c.api()).get<ReviewView>(
        `/api/v1/reviews/${encodeURIComponent(id)}`,
      );
      const { grant: _grant, ...shown } = review; // the grant is `grants request`'s to print
      c.out.data(shown, () => c.out.line(describe(shown)));
    });

  for (const action of ['approve', 'reject', 'revoke'] as const) {
    reviews
      .command(`${action} <id>`)
      .description(
        action === 'approve'
          ? 'approve a pending review (never your own)'
          : action === 'reject'
            ? 'reject a pending review'
            : 'end an approved access window: its grant is revoked, live sessions close',
      )
      .option('--reason <text>', 'why (recorded in the audit log)')
      .action(async (id: string, opts: { reason?: string }) => {
        const c = ctx();
        const review = await (await c.api()).post<ReviewView & { sessionsEnded?: number }>(
          `/api/v1/reviews/${encodeURIComponent(id)}/${action}`,
          opts.reason === undefined ? {} : { reason: opts.reason },
        );
        c.out.data(review, () => {
          const missing = review.missingGroups ?? [];
          const tail =
            review.status === 'pending'
              ? ` (${review.approvals.length} of ${review.minApprovals} approvals${missing.length === 0 ? '' : `; still needs a member of ${missing.join(', ')}`})`
              : action === 'revoke'
                ? `; ended ${review.sessionsEnded ?? 0} live session(s)`
                : '';
          c.out.line(`✔ review ${id} is ${review.status}${tail}`);
        });
      });
  }
}

function describe(r: ReviewView): string {
  const missing = r.missingGroups ?? [];
  const rows: [string, string][] = [
    ['id', r.id],
    ['kind', r.kind],
    ['status', r.breakGlass ? `${r.status} (BREAK-GLASS: taken by its requester)` : r.status],
    ['connection', r.connection],
    ['requester', r.requester],
    ['justification', r.justification ?? '-'],
    ['duration', r.durationSeconds === null ? '-' : `${r.durationSeconds}s`],
    ['statement', r.statement ?? '-'],
    [
      'approvals',
      `${r.approvals.length} of ${r.minApprovals} (${r.approvals.map((a) => `${a.user}${(a.groups ?? []).length > 0 ? ` as ${(a.groups ?? []).join('+')}` : ''}`).join(', ') || 'none yet'})`,
    ],
    [
      'approvers',
      `${r.approvers.join(', ') || '(admins)'}${r.requireAllGroups === true ? ' (every group must approve)' : ''}`,
    ],
    ...(r.status === 'pending' && missing.length > 0
      ? [
          ['missing groups', `${missing.join(', ')} (no approval from a member yet)`] as [
            string,
            string,
          ],
        ]
      : []),
    ['created', r.createdAt],
    ['expires', r.expiresAt],
    [
      'decided',
      r.decidedAt === null
        ? '-'
        : `${r.decidedAt} by ${r.decidedBy ?? '-'}${r.decisionReason === null ? '' : ` (${r.decisionReason})`}`,
    ],
    ['grant', r.grantId ?? '-'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  if (r.status === 'pending') out.push(`approve with: ${r.approveWith}`);
  return out.join('\n');
}
