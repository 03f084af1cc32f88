/**
 * `hoop login`: get a token from the broker and save it with the broker URL (0600).
 *
 *   --token T        check an existing token (/api/v1/whoami)
 *   --user NAME      local user: password prompted (or --password-stdin), POST /auth/login
 *   (neither)        the broker's identity provider: authorization code + PKCE through a
 *                    loopback listener http://127.0.0.1:PORT/callback; the URL is printed for
 *                    headless use, and a browser is opened unless CI is set
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import { configPath, readConfigFile, writeConfigFile } from '../config.js';
import type { CommandContext } from '../context.js';
import { readPassword } from './admin-users.js';

interface LoginOptions {
  broker?: string;
  token?: string;
  user?: string;
  passwordStdin?: boolean;
  callbackPort?: string;
  browser?: boolean;
  timeout?: string;
}

interface IssuedToken {
  token: string;
  user: string;
  role: string;
  expiresAt: string;
}

export function loginCommand(program: Command, ctx: () => CommandContext): void {
  program
    .command('login')
    .description('log in to a broker and save the broker URL and your token (0600)')
    .option('--broker <url>', 'broker base URL, e.g. http://127.0.0.1:8009')
    .option('--token <token>', 'an existing token (or set HOOP_TOKEN)')
    .option('--user <name>', 'log in as a local user (password prompted)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--callback-port <port>', 'port of the loopback callback for the OIDC login', '0')
    .option('--no-browser', 'only print the login URL, do not open a browser')
    .option('--timeout <seconds>', 'how long to wait for the OIDC login', '300')
    .action(async (opts: LoginOptions) => {
      const c = ctx();
      const path = configPath(c.env);
      const file = await readConfigFile(path);
      const brokerUrl =
        opts.broker ??
        program.opts<{ broker?: string }>().broker ??
        c.env['HOOP_BROKER_URL'] ??
        file.brokerUrl;
      if (brokerUrl === undefined) throw new HoopError('USAGE', 'hoop login needs --broker URL');
      const anonymous = new ApiClient(brokerUrl, undefined);
      let token: string;
      let expiresAt: string | undefined;
      if (opts.token !== undefined || (opts.user === undefined && c.env['HOOP_TOKEN'])) {
        token = (opts.token ?? c.env['HOOP_TOKEN']) as string;
      } else if (opts.user !== undefined) {
        const password = await readPassword(opts.passwordStdin === true, false);
        const issued = await anonymous.post<IssuedToken>('/api/v1/auth/login', {
          user: opts.user,
          password,
        });
        token = issued.token;
        expiresAt = issued.expiresAt;
      } else {
        const methods = await anonymous.get<{ oidc: { issuer: string } | null }>(
          '/api/v1/auth/methods',
        );
        if (methods.oidc === null) {
          throw new HoopError('USAGE', 'this broker has no identity provider', {
            hint: 'Use `hoop login --broker URL --user NAME` or `--token T`.',
          });
        }
        const issued = await oidcLogin(c, anonymous, {
          port: Number(opts.callbackPort ?? '0'),
          openBrowser: opts.browser !== false && !c.env['CI'],
          timeoutMs: Number(opts.timeout ?? '300') * 1000,
        });
        token = issued.token;
        expiresAt = issued.expiresAt;
      }
      const me = await new ApiClient(brokerUrl, token).get<{ name: string; role: string }>(
        '/api/v1/whoami',
      );
      await writeConfigFile(path, { brokerUrl, token });
      c.out.data(
        {
          broker: brokerUrl,
          user: me.name,
          role: me.role,
          config: path,
          expiresAt: expiresAt ?? null,
        },
        () =>
          c.out.line(
            `Logged in to ${brokerUrl} as ${me.name} (${me.role})${expiresAt ? ` until ${expiresAt}` : ''}. Saved to ${path}.`,
          ),
      );
    });
}

/** Serves one callback on 127.0.0.1, runs the code flow through the broker, returns the token. */
async function oidcLogin(
  c: CommandContext,
  api: ApiClient,
  options: { port: number; openBrowser: boolean; timeoutMs: number },
): Promise<IssuedToken> {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new HoopError('USAGE', '--callback-port must be a port number');
  }
  let settle: { resolve: (v: { code: string; state: string }) => void; reject: (e: Error) => void };
  const received = new Promise<{ code: string; state: string }>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const code = url.searchParams.get('code');
    const state = url.searchParams.get('state');
    const error = url.searchParams.get('error');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      error === null && code !== null
        ? '<!doctype html><p>hoop: logged in. You can close this window.</p>'
        : '<!doctype html><p>hoop: the login did not complete. See your terminal.</p>',
    );
    if (error !== null || code === null || state === null) {
      settle.reject(
        new HoopError(
          'OIDC_FAILED',
          `the identity provider answered ${(error ?? 'without a code').slice(0, 64)}`,
        ),
      );
    } else settle.resolve({ code, state });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new HoopError('USAGE', `cannot listen on 127.0.0.1:${options.port}: ${err.message}`)),
    );
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const timer = setTimeout(
    () =>
      settle.reject(new HoopError('OIDC_FAILED', 'the login timed out; run `hoop login` again')),
    options.timeoutMs,
  );
  try {
    const port = (server.address() as AddressInfo).port;
    const started = await api.post<{ authorizationUrl: string; state: string }>(
      '/api/v1/auth/oidc/start',
      { redirectUri: `http://127.0.0.1:${port}/callback` },
    );
    process.stderr.write(
      `Open this URL in a browser to log in (waiting for the callback on 127.0.0.1:${port}):\n\n  ${started.authorizationUrl}\n\n`,
    );
    if (options.openBrowser) openBrowser(started.authorizationUrl);
    const { code, state } = await received;
    if (state !== started.state) {
      throw new HoopError('OIDC_FAILED', 'the callback state does not match this login');
    }
    c.out.progress('Completing the login…');
    return await api.post<IssuedToken>('/api/v1/auth/oidc/callback', { code, state });
  } finally {
    clearTimeout(timer);
    server.close();
    server.closeAllConnections();
  }
}

function openBrowser(url: string): void {
  const command =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // headless: the URL is printed above
  }
}
