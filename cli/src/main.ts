/**
 * The `hoop` command. Every command takes --json (one JSON document on stdout) and exits with a
 * stable code: 0 ok, 2 usage, 3 denied, 4 not found, 5 agent offline, 6 unreachable (see README).
 */

import { ExitCode } from '@hoop/shared';
import { Command, CommanderError } from 'commander';
import { adminAccessCommand } from './commands/admin-access.js';
import { adminAgentsCommand } from './commands/admin-agents.js';
import { adminApiKeysCommand } from './commands/admin-apikeys.js';
import { adminConnectionsCommand } from './commands/admin-connections.js';
import { adminServiceAccountsCommand } from './commands/admin-serviceaccounts.js';
import { adminTrustCommand } from './commands/admin-trust.js';
import { adminUsersCommand } from './commands/admin-users.js';
import { agentCommand } from './commands/agent.js';
import { auditCommand } from './commands/audit.js';
import { brokerCommand } from './commands/broker.js';
import { connectCommand } from './commands/connect.js';
import { execCommand } from './commands/exec.js';
import { grantsCommand } from './commands/grants.js';
import { loginCommand } from './commands/login.js';
import { reviewsCommand } from './commands/reviews.js';
import { sessionsCommand } from './commands/sessions.js';
import { upCommand } from './commands/up.js';
import { type CommandContext, createContext, type GlobalOptions } from './context.js';
import { reportError } from './output.js';

export const CLI_VERSION = '0.1.0';

export function buildProgram(env: NodeJS.ProcessEnv): Command {
  const program = new Command('hoop')
    .description(
      'hoop — access gateway: short-lived access to databases and servers through agents',
    )
    .version(CLI_VERSION)
    .option('--json', 'machine-readable output')
    .option('--broker <url>', 'broker URL (overrides HOOP_BROKER_URL and the config file)')
    .option('-v, --verbose', 'debug logging on stderr')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const ctx = (): CommandContext => createContext(env, program.opts<GlobalOptions>());
  upCommand(program, ctx);
  loginCommand(program, ctx);
  connectCommand(program, ctx);
  execCommand(program, ctx);
  grantsCommand(program, ctx);
  reviewsCommand(program, ctx);
  sessionsCommand(program, ctx);
  auditCommand(program, ctx);
  brokerCommand(program, ctx);
  agentCommand(program, ctx);
  const admin = program.command('admin').description('administer agents and connections');
  adminAgentsCommand(admin, ctx);
  adminConnectionsCommand(admin, ctx);
  adminUsersCommand(admin, ctx);
  adminServiceAccountsCommand(admin, ctx);
  adminApiKeysCommand(admin, ctx);
  adminAccessCommand(admin, ctx);
  adminTrustCommand(admin, ctx);
  for (const command of [admin, ...admin.commands, ...program.commands]) command.exitOverride();
  return program;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = buildProgram(env);
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return ExitCode.ok;
      if (err.code === 'commander.executeSubCommandAsync') return ExitCode.ok;
      return ExitCode.usage;
    }
    return reportError(err, json);
  }
}
