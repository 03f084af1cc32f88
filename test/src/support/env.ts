/**
 * Isolation for spawned processes: every process gets a temp HOME and HOOP_CONFIG (so no test
 * ever reads or writes the real user config) and none of the HOOP_* / PG* variables of the shell
 * that runs the suite, so a developer's own login or PGPASSWORD cannot leak into a test.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Env = Record<string, string | undefined>;

const removeOnExit = new Set<string>();
process.once('exit', () => {
  for (const dir of removeOnExit) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp dir, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hoop-e2e-${prefix}-`));
  removeOnExit.add(dir);
  return dir;
}

/** Variables a test process must not hand down to the processes it starts. */
function inherited(name: string): boolean {
  return !(
    name.startsWith('HOOP_') ||
    name.startsWith('PG') ||
    name.startsWith('NODE_TEST') ||
    name === 'NODE_OPTIONS' ||
    name === 'XDG_CONFIG_HOME'
  );
}

export interface IsolatedEnv {
  /** The temp dir holding HOME and the config file. */
  readonly dir: string;
  readonly env: Env;
}

/** A clean environment with a temp HOME and HOOP_CONFIG, plus `extra`. */
export function isolatedEnv(extra: Env = {}): IsolatedEnv {
  const dir = tempDir('env');
  const env: Env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (inherited(name)) env[name] = value;
  }
  env['HOME'] = join(dir, 'home');
  mkdirSync(env['HOME']);
  env['HOOP_CONFIG'] = join(dir, 'config.json');
  Object.assign(env, extra);
  return { dir, env };
}

/** `base` with `overrides` applied; an `undefined` override removes the variable. */
export function withEnv(base: Env, overrides: Env): Env {
  const env = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}
