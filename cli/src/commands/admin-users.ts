/**
 * `hoop admin users create|list|show|disable|enable`: people. A local user's password is prompted
 * twice on the terminal or read from stdin (`--password-stdin`); it never appears in argv.
 */
import { createInterface } from 'node:readline';
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table } from '../output.js';

interface UserView {
  id: string;
  name: string;
  role: string;
  kind: string;
  groups: string[];
  disabled: boolean;
  login: string;
  createdAt: string;
  sessionsEnded?: number;
}

/** Reads all of stdin as the password (one trailing newline dropped). */
export async function readPasswordStdin(
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > 4096)
      throw new HoopError('USAGE', 'the password on stdin is longer than 4096 bytes');
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (text.length === 0) throw new HoopError('USAGE', 'no password on stdin');
  return text;
}

/** Prompts on the terminal without echoing what is typed. */
export function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    return Promise.reject(
      new HoopError('USAGE', 'no terminal to ask for the password', {
        hint: 'Pipe it in with --password-stdin.',
      }),
    );
  }
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    let muted = false;
    output._writeToOutput = (s: string) => {
      if (!muted || s.includes('\n')) process.stderr.write(muted ? '\n' : s);
    };
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
    muted = true;
    rl.on('SIGINT', () => {
      rl.close();
      reject(new HoopError('USAGE', 'cancelled'));
    });
  });
}

/** The password from stdin, or prompted (twice when `confirm`, which must match). */
export async function readPassword(fromStdin: boolean, confirm: boolean): Promise<string> {
  if (fromStdin) return readPasswordStdin();
  const first = await promptHidden('Password: ');
  if (confirm) {
    const second = await promptHidden('Repeat password: ');
    if (first !== second) throw new HoopError('USAGE', 'the passwords do not match');
  }
  if (first.length === 0) throw new HoopError('USAGE', 'empty password');
  return first;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

export function adminUsersCommand(admin: Command, ctx: () => CommandContext): void {
  const users = admin.command('users').description('people: local users and OIDC users');

  users
    .command('create <name>')
    .description('create a local user with a password (prompted, or --password-stdin)')
    .option(
      '--group <group>',
      'a group the user belongs to (repeatable, or comma-separated)',
      collect,
    )
    .option('--admin', 'make the user an admin')
    .option('--password-stdin', 'read the password from stdin instead of prompting')
    .action(
      async (
        name: string,
        opts: { group?: string[]; admin?: boolean; passwordStdin?: boolean },
      ) => {
        const c = ctx();
        const api = await c.api();
        const password = await readPassword(opts.passwordStdin === true, true);
        const created = await api.post<UserView>('/api/v1/users', {
          name,
          role: opts.admin ? 'admin' : 'user',
          groups: opts.group ?? [],
          password,
        });
        c.out.data(created, () =>
          c.out.line(
            `User ${created.name} created (${created.role}; groups: ${created.groups.join(', ') || '-'}). They log in with: hoop login --broker URL --user ${created.name}`,
          ),
        );
      },
    );

  users
    .command('list')
    .description('list people')
    .action(async () => {
      const c = ctx();
      const list = await (await c.api()).get<UserView[]>('/api/v1/users');
      c.out.data(list, () =>
        c.out.line(
          table(list.map((u) => ({ ...u, groups: u.groups.join(',') })) as never, [
            'name',
            'role',
            'login',
            'groups',
            'disabled',
            'createdAt',
          ]),
        ),
      );
    });

  users.command('show <name>').action(async (name: string) => {
    const c = ctx();
    const user = await (await c.api()).get<UserView>(`/api/v1/users/${encodeURIComponent(name)}`);
    c.out.data(user, () =>
      c.out.line(
        table([{ ...user, groups: user.groups.join(',') }] as never, [
          'name',
          'role',
          'login',
          'groups',
          'disabled',
        ]),
      ),
    );
  });

  for (const verb of ['disable', 'enable'] as const) {
    users
      .command(`${verb} <name>`)
      .description(
        verb === 'disable'
          ? 'disable a user: their tokens stop working and live sessions close'
          : 'enable a disabled user',
      )
      .action(async (name: string) => {
        const c = ctx();
        const user = await (await c.api()).post<UserView>(
          `/api/v1/users/${encodeURIComponent(name)}/${verb}`,
          {},
        );
        c.out.data(user, () =>
          c.out.line(
            verb === 'disable'
              ? `User ${user.name} disabled; ${user.sessionsEnded ?? 0} live session(s) closed.`
              : `User ${user.name} enabled.`,
          ),
        );
      });
  }
}
