/**
 * The CLI's configuration: a JSON file written by `hoop login` (mode 0600, in the user config
 * dir, or HOOP_CONFIG), overridden by HOOP_BROKER_URL and HOOP_TOKEN. The token is never printed.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { HoopError } from '@hoop/shared';

export interface CliConfigFile {
  brokerUrl?: string;
  token?: string;
}

export interface CliConfig {
  readonly brokerUrl: string | undefined;
  readonly token: string | undefined;
  readonly path: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

export function configPath(env: Env): string {
  if (env['HOOP_CONFIG']) return env['HOOP_CONFIG'];
  const base = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return join(base, 'hoop', 'config.json');
}

export async function readConfigFile(path: string): Promise<CliConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new HoopError('USAGE', `cannot read the config file ${path}: ${(err as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as CliConfigFile;
    return {
      ...(typeof value.brokerUrl === 'string' ? { brokerUrl: value.brokerUrl } : {}),
      ...(typeof value.token === 'string' ? { token: value.token } : {}),
    };
  } catch {
    throw new HoopError('USAGE', `the config file ${path} is not valid JSON`, {
      hint: 'Run `hoop login --broker URL --token T` to write it again.',
    });
  }
}

export async function writeConfigFile(path: string, config: CliConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}

export async function loadConfig(
  env: Env,
  overrides: { brokerUrl?: string | undefined } = {},
): Promise<CliConfig> {
  const path = configPath(env);
  const file = await readConfigFile(path);
  return {
    brokerUrl: overrides.brokerUrl || env['HOOP_BROKER_URL'] || file.brokerUrl,
    token: env['HOOP_TOKEN'] || file.token,
    path,
  };
}

export function requireBroker(config: CliConfig): { brokerUrl: string; token: string } {
  if (config.brokerUrl === undefined) {
    throw new HoopError('USAGE', 'no broker configured', {
      hint: 'Run `hoop login --broker URL --token T`, or set HOOP_BROKER_URL and HOOP_TOKEN.',
    });
  }
  if (config.token === undefined) {
    throw new HoopError('AUTH_REQUIRED', 'no token configured', {
      hint: 'Run `hoop login --broker URL --token T`, or set HOOP_TOKEN.',
    });
  }
  return { brokerUrl: config.brokerUrl, token: config.token };
}
