/**
 * `hoop admin trust create|list|delete`: let a CI system's OIDC tokens act as a service account
 * (issuer and audience exact; subject and claims as globs, `*` = any run of characters).
 */
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface TrustView {
  name: string;
  issuer: string;
  audience: string;
  subjectPattern: string;
  claims: Record<string, string>;
  serviceAccount: string;
  createdAt: string;
}

function claim(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0)
    throw new HoopError('USAGE', `--claim takes NAME=PATTERN (got "${value.slice(0, 40)}")`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

const view = (t: TrustView) => ({
  ...t,
  claims: Object.entries(t.claims)
    .map(([k, v]) => `${k}=${v}`)
    .join(' '),
});

export function adminTrustCommand(admin: Command, ctx: () => CommandContext): void {
  const trust = admin.command('trust').description('trust policies for CI identity tokens');

  trust
    .command('create <name>')
    .description('let matching CI tokens act as a service account (no stored secret)')
    .requiredOption('--issuer <url>', "the CI system's OIDC issuer (the token's iss)")
    .requiredOption('--audience <aud>', 'the audience the job requests its token for')
    .requiredOption('--subject <pattern>', "glob on the token's sub, e.g. 'repo:org/app:*'")
    .option('--claim <name=pattern>', 'another claim that must match (repeatable)', claim)
    .requiredOption('--serviceaccount <name>', 'the service account a matching job acts as')
    .action(
      async (
        name: string,
        opts: {
          issuer: string;
          audience: string;
          subject: string;
          claim?: Record<string, string>;
          serviceaccount: string;
        },
      ) => {
        const c = ctx();
        const created = await (await c.api()).post<TrustView>('/api/v1/trust', {
          name,
          issuer: opts.issuer,
          audience: opts.audience,
          subject: opts.subject,
          claims: opts.claim ?? {},
          serviceAccount: opts.serviceaccount,
        });
        c.out.data(created, () =>
          c.out.line(
            `Trust policy ${created.name} created: tokens from ${created.issuer} for ${created.audience} with sub ${created.subjectPattern} act as ${created.serviceAccount}.`,
          ),
        );
      },
    );

  trust.command('list').action(async () => {
    const c = ctx();
    const list = await (await c.api()).get<TrustView[]>('/api/v1/trust');
    c.out.data(list, () =>
      c.out.line(
        table(list.map(view) as never, [
          'name',
          'issuer',
          'audience',
          'subjectPattern',
          'claims',
          'serviceAccount',
        ]),
      ),
    );
  });

  trust.command('delete <name>').action(async (name: string) => {
    const c = ctx();
    const result = await (await c.api()).delete<{ deleted: string }>(
      `/api/v1/trust/${encodeURIComponent(name)}`,
    );
    c.out.data(result, () => c.out.line(`Trust policy ${name} deleted.`));
  });
}
