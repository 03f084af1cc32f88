/**
 * `hoop grants request CONN --ttl 10m --reason "…" [--no-wait] [--break-glass]`, `hoop grants list`,
 * `hoop grants revoke ID`.
 * A grant is a short-lived JWT for one connection; `hoop connect CONN --grant G` (or HOOP_GRANT)
 * uses it with no login. The grant is printed once (it is the credential) and never logged.
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';
import { type AccessOptions, accessOptions, requestAccess } from './request-access.js';

export function grantsCommand(program: Command, ctx: () => CommandContext): void {
  const grants = program
    .command('grants')
    .description('short-lived grants: request one for a connection, list, revoke');

  accessOptions(
    grants
      .command('request <connection>')
      .description('mint a grant for a connection (prints it once); waits when it needs approval'),
  ).action(async (connection: string, opts: AccessOptions) => {
    const c = ctx();
    const minted = await requestAccess(c, await c.api(), connection, opts);
    c.out.data({ id: minted.id, grant: minted.grant, expiresAt: minted.expiresAt }, () => {
      c.out.line(minted.grant);
      process.stderr.write(
        `✔ grant ${minted.id} for ${minted.connection}, expires ${minted.expiresAt}` +
          `${minted.capped ? ' (capped by the connection)' : ''}\n` +
          `  use it: HOOP_GRANT=<grant> hoop connect ${minted.connection}\n`,
      );
    });
  });

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
