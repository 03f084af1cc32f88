/** `hoop login --broker URL --token T`: checks the token against the broker, then saves both. */

import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import { configPath, readConfigFile, writeConfigFile } from '../config.js';
import type { CommandContext } from '../context.js';

export function loginCommand(program: Command, ctx: () => CommandContext): void {
  program
    .command('login')
    .description('save the broker URL and your token in the config file (0600)')
    .option('--broker <url>', 'broker base URL, e.g. http://127.0.0.1:8009')
    .option('--token <token>', 'your API token (or set HOOP_TOKEN)')
    .action(async (opts: { broker?: string; token?: string }) => {
      const c = ctx();
      const path = configPath(c.env);
      const file = await readConfigFile(path);
      const brokerUrl = opts.broker ?? c.env['HOOP_BROKER_URL'] ?? file.brokerUrl;
      const token = opts.token ?? c.env['HOOP_TOKEN'];
      if (brokerUrl === undefined) throw new HoopError('USAGE', 'hoop login needs --broker URL');
      if (token === undefined)
        throw new HoopError('USAGE', 'hoop login needs --token T (or HOOP_TOKEN)');
      const me = await new ApiClient(brokerUrl, token).get<{ name: string; role: string }>(
        '/api/v1/whoami',
      );
      await writeConfigFile(path, { brokerUrl, token });
      c.out.data({ broker: brokerUrl, user: me.name, role: me.role, config: path }, () =>
        c.out.line(`Logged in to ${brokerUrl} as ${me.name} (${me.role}). Saved to ${path}.`),
      );
    });
}
