/**
 * `hoop grants request CONN --ttl 10m --reason "…"`, `hoop grants list`, `hoop grants revoke ID`.
 * A grant is a short-lived JWT for one connection; `hoop connect CONN --grant G` (or HOOP_GRANT)
 * uses it with no login. The grant is printed once (it is the credential) and never logged.
 */
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';
import { waitForReview } from './reviews.js';

interface MintedView {
  id: string;
  grant: string;
  expiresAt: string;
  connection: string;
  ttlSeconds: number;
  capped: boolean;
}

export function grantsCommand(program: Command, ctx: () => CommandContext): void {
  const grants = program
    .command('grants')
    .description('short-lived grants: request one for a connection, list, revoke');

  grants
    .command('request <connection>')
    .description('mint a grant for a connection (prints it once)')
    .option('--ttl <ttl>', 'lifetime: seconds or 90s, 10m, 2h (capped per connection)', '10m')
    .option('--reason <text>', 'why you need access (recorded in the audit log)')
    .option('--no-wait', 'when approval is needed: print the review id and exit 7 (pending)')
    .option('--poll-interval <ms>', 'how often to check a pending review', '1000')
    .action(
      async (
        connection: string,
        opts: { ttl: string; reason?: string; wait: boolean; pollInterval: string },
      ) => {
        const c = ctx();
        const api = await c.api();
        const answer = await api.post<MintedView | { review: { id: string; status: string } }>(
          '/api/v1/grants',
          {
            connection,
            ttl: opts.ttl,
            ...(opts.reason === undefined ? {} : { reason: opts.reason }),
          },
        );
        let minted: Omit<MintedView, 'ttlSeconds'>;
        if ('review' in answer) {
          const { id, status } = answer.review;
          if (!opts.wait) {
            c.out.data({ review: { id, status } }, () => c.out.line(id));
            throw new HoopError(
              'PENDING_APPROVAL',
              `access to ${connection} waits for review ${id}`,
              {
                hint: `An approver runs \`hoop reviews approve ${id}\`; then \`hoop reviews show ${id}\`.`,
              },
            );
          }
          const interval = Number(opts.pollInterval);
          const approved = await waitForReview(api, id, {
            intervalMs: Number.isFinite(interval) && interval >= 50 ? interval : 1000,
            json: c.out.json,
          });
          minted = {
            id: approved.grant.id,
            grant: approved.grant.grant,
            expiresAt: approved.grant.expiresAt,
            connection,
            capped: false,
          };
          c.out.progress(
            `✔ review ${id} approved by ${approved.approvals.map((a) => a.user).join(', ')}`,
          );
        } else {
          minted = answer;
        }
        c.out.data({ id: minted.id, grant: minted.grant, expiresAt: minted.expiresAt }, () => {
          c.out.line(minted.grant);
          process.stderr.write(
            `✔ grant ${minted.id} for ${minted.connection}, expires ${minted.expiresAt}` +
              `${minted.capped ? ' (capped by the connection)' : ''}\n` +
              `  use it: HOOP_GRANT=<grant> hoop connect ${minted.connection}\n`,
          );
        });
      },
    );

  grants
    .command('list')
    .description('your grants (admins: everyone’s)')
    .option('--active', 'only grants that are neither expired nor revoked')
    .option('--mine', 'only your own grants (for admins)')
    .action(async (opts: { active?: boolean; mine?: boolean }) => {
      const c = ctx();
      const query = new URLSearchParams();
      if (opts.active) query.set('active', 'true');
      if (opts.mine) query.set('all', 'false');
      const list = await (await c.api()).get<Record<string, unknown>[]>(
        `/api/v1/grants${query.size > 0 ? `?${query}` : ''}`,
      );
      c.out.data(list, () =>
        c.out.line(
          list.length === 0
            ? 'No grants.'
            : table(list, ['id', 'user', 'connection', 'status', 'expiresAt', 'reason']),
        ),
      );
    });

  grants
    .command('revoke <id>')
    .description('revoke a grant; its live sessions end within seconds')
    .action(async (id: string) => {
      const c = ctx();
      const revoked = await (await c.api()).delete<Record<string, unknown>>(
        `/api/v1/grants/${encodeURIComponent(id)}`,
      );
      c.out.data(revoked, () =>
        c.out.line(
          `✔ revoked grant ${id} (${String(revoked['connection'])}); ended ${String(revoked['sessionsEnded'] ?? 0)} live session(s)`,
        ),
      );
    });
}
