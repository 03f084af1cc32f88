/**
 * `hoop admin connections create|list|show|delete`. The target password comes from the CLI's
 * environment (`--password-env VAR`) so it never sits in argv or shell history, or stays with the
 * agent (`--password-ref env:NAME`).
 */

import { readFile } from 'node:fs/promises';
import { HoopError, type Policy, parseCredentialRef, parsePolicy } from '@hoop/shared';
import { type Command, Option } from 'commander';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface ConnectionView {
  name: string;
  type: string;
  agent: string;
  agentOnline: boolean;
  host: string;
  port: number;
  user: string;
  database: string;
  tls: string;
  credential: string;
}

const columns = [
  'name',
  'type',
  'agent',
  'agentOnline',
  'host',
  'port',
  'user',
  'database',
  'credential',
];

export function adminConnectionsCommand(admin: Command, ctx: () => CommandContext): void {
  const connections = admin
    .command('connections')
    .description('targets reachable through an agent');

  connections
    .command('create <name>')
    .description('create a connection to a target behind an agent')
    .requiredOption('--agent <agent>', 'the agent that reaches the target')
    .addOption(
      new Option('--type <type>', 'connection type').choices(['postgres']).default('postgres'),
    )
    .requiredOption('--host <host>', 'target host, as the agent sees it')
    .requiredOption('--port <port>', 'target port', (v) => parsePort(v))
    .requiredOption('--user <user>', 'target user the agent logs in as')
    .requiredOption('--database <database>', 'target database')
    .addOption(
      new Option('--tls <mode>', 'TLS to the target')
        .choices(['disable', 'prefer', 'require'])
        .default('prefer'),
    )
    .option(
      '--password-env <VAR>',
      "read the target password from this variable of the CLI's environment; stored encrypted",
    )
    .option(
      '--password-ref <env:NAME>',
      "the agent reads the password from its own environment; it never leaves the agent's network",
    )
    .option(
      '--tag <tag>',
      'a tag for access rules (repeatable, or comma-separated)',
      (v: string, prev: string[] = []) => [...prev, ...v.split(',').filter(Boolean)],
    )
    .action(
      async (
        name: string,
        opts: {
          agent: string;
          type: string;
          host: string;
          port: number;
          user: string;
          database: string;
          tls: string;
          passwordEnv?: string;
          passwordRef?: string;
          tag?: string[];
        },
      ) => {
        const c = ctx();
        if (opts.passwordEnv !== undefined && opts.passwordRef !== undefined) {
          throw new HoopError('USAGE', 'use either --password-env or --password-ref, not both');
        }
        let password: string | undefined;
        if (opts.passwordEnv !== undefined) {
          password = c.env[opts.passwordEnv];
          if (password === undefined || password === '') {
            throw new HoopError(
              'USAGE',
              `--password-env ${opts.passwordEnv}: that variable is not set in this shell`,
              {
                hint: `Export it first: read -rs ${opts.passwordEnv} && export ${opts.passwordEnv}`,
              },
            );
          }
        }
        if (opts.passwordRef !== undefined && parseCredentialRef(opts.passwordRef) === undefined) {
          throw new HoopError(
            'USAGE',
            `--password-ref must look like env:NAME, got "${opts.passwordRef}"`,
          );
        }
        const created = await (await c.api()).post<ConnectionView>('/api/v1/connections', {
          name,
          agent: opts.agent,
          type: opts.type,
          host: opts.host,
          port: opts.port,
          user: opts.user,
          database: opts.database,
          tls: opts.tls,
          ...(password === undefined ? {} : { password }),
          ...(opts.passwordRef === undefined ? {} : { passwordRef: opts.passwordRef }),
          ...(opts.tag === undefined ? {} : { tags: opts.tag }),
        });
        c.out.data(created, () => {
          c.out.line(
            `Connection ${created.name} created (${created.type} ${created.host}:${created.port} via agent ${created.agent}).`,
          );
          c.out.line(`Use it: hoop connect ${created.name}`);
        });
      },
    );

  connections
    .command('list')
    .description('list connections')
    .action(async () => {
      const c = ctx();
      const list = await (await c.api()).get<ConnectionView[]>('/api/v1/connections');
      c.out.data(list, () =>
        c.out.line(
          list.length === 0
            ? 'No connections yet: hoop admin connections create NAME …'
            : table(list as never, columns),
        ),
      );
    });

  connections.command('show <name>').action(async (name: string) => {
    const c = ctx();
    const conn = await (await c.api()).get<ConnectionView>(
      `/api/v1/connections/${encodeURIComponent(name)}`,
    );
    c.out.data(conn, () => c.out.line(table([conn as never], columns)));
  });

  adminPolicyCommand(connections, ctx);

  connections.command('delete <name>').action(async (name: string) => {
    const c = ctx();
    const result = await (await c.api()).delete<{ deleted: string }>(
      `/api/v1/connections/${encodeURIComponent(name)}`,
    );
    c.out.data(result, () => c.out.line(`Connection ${name} deleted.`));
  });
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535)
    throw new HoopError('USAGE', `"${value}" is not a port number`);
  return port;
}

/** `hoop admin connections policy set NAME --file policy.yaml` and `policy get NAME`. */
export function adminPolicyCommand(connections: Command, ctx: () => CommandContext): void {
  const policy = connections
    .command('policy')
    .description("a connection's policy: guardrails, masking, recording");

  policy
    .command('set <connection>')
    .description('validate and apply a policy document (YAML or JSON)')
    .requiredOption('--file <path>', 'policy document; - reads standard input')
    .action(async (name: string, opts: { file: string }) => {
      const c = ctx();
      const text =
        opts.file === '-'
          ? await readStdin()
          : await readFile(opts.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
              throw new HoopError('USAGE', `cannot read ${opts.file}: ${err.code ?? err.message}`);
            });
      let document: unknown;
      try {
        document = parseYaml(text);
      } catch (err) {
        throw new HoopError(
          'USAGE',
          `${opts.file} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
        );
      }
      // Validate locally first for a fast, precise error; the broker validates again.
      parsePolicy(document);
      const applied = await (await c.api()).request<Policy>(
        'PUT',
        `/api/v1/connections/${encodeURIComponent(name)}/policy`,
        document ?? {},
      );
      c.out.data(applied, () => {
        c.out.line(`Policy of ${name} updated; new sessions use it.`);
        c.out.line(stringifyYaml(applied).trimEnd());
      });
    });

  policy
    .command('get <connection>')
    .description('print the policy a connection enforces')
    .action(async (name: string) => {
      const c = ctx();
      const current = await (await c.api()).get<Policy>(
        `/api/v1/connections/${encodeURIComponent(name)}/policy`,
      );
      c.out.data(current, () => c.out.line(stringifyYaml(current).trimEnd()));
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
