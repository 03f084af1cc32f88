/**
 * `hoop agent start`: the agent in the foreground (HOOP_BROKER_URL, HOOP_AGENT_TOKEN; HOOP_SPOOL_*,
 * HOOP_PG_WARM, HOOP_AGENT_ADMISSION; HOOP_AGENT_PG_LISTEN and HOOP_AGENT_PG_TLS_* for the direct
 * endpoint).
 */

import { readFileSync } from 'node:fs';
import { HoopError, parseListen } from '@hoop/shared';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { serveUntilSignal } from '../signals.js';

export function agentCommand(program: Command, ctx: () => CommandContext): void {
  const agent = program.command('agent').description('run an agent next to your targets');
  agent
    .command('start')
    .description('connect to the broker and serve sessions (HOOP_BROKER_URL, HOOP_AGENT_TOKEN)')
    .option(
      '--pg-listen <host:port>',
      'direct Postgres endpoint for clients in this network (HOOP_AGENT_PG_LISTEN); off by default',
    )
    .action(async (opts: { pgListen?: string }) => {
      const { Agent, defaultEngines, MAX_WARM_PER_KEY } = await import('@hoop/agent');
      const c = ctx();
      const brokerUrl = c.env['HOOP_BROKER_URL'];
      const token = c.env['HOOP_AGENT_TOKEN'];
      if (!brokerUrl)
        throw new HoopError('USAGE', 'HOOP_BROKER_URL is not set', {
          hint: 'Set it to the broker URL, e.g. http://127.0.0.1:8009.',
        });
      if (!token) {
        throw new HoopError('USAGE', 'HOOP_AGENT_TOKEN is not set', {
          hint: 'Create an agent with `hoop admin agents create NAME` and set HOOP_AGENT_TOKEN to its token.',
        });
      }
      const logger = c.serviceLogger.child({ component: 'agent' });
      const spoolMax = c.env['HOOP_SPOOL_MAX_BYTES'];
      const maxBytes = spoolMax ? Number(spoolMax) : undefined;
      if (maxBytes !== undefined && !(Number.isInteger(maxBytes) && maxBytes > 0)) {
        throw new HoopError(
          'USAGE',
          `HOOP_SPOOL_MAX_BYTES "${spoolMax}" is not a positive number of bytes`,
        );
      }
      const fsync = c.env['HOOP_SPOOL_FSYNC'];
      if (fsync && fsync !== 'always' && fsync !== 'batch') {
        throw new HoopError('USAGE', `HOOP_SPOOL_FSYNC "${fsync}" must be always or batch`);
      }
      const warm = c.env['HOOP_PG_WARM'];
      const warmConnections = warm ? Number(warm) : undefined;
      if (
        warmConnections !== undefined &&
        !(
          Number.isInteger(warmConnections) &&
          warmConnections >= 0 &&
          warmConnections <= MAX_WARM_PER_KEY
        )
      ) {
        throw new HoopError(
          'USAGE',
          `HOOP_PG_WARM "${warm}" must be a whole number from 0 to ${MAX_WARM_PER_KEY}`,
          {
            hint: 'It is how many logged-in spare connections the agent keeps per Postgres target; 0 turns them off.',
          },
        );
      }
      const admission = c.env['HOOP_AGENT_ADMISSION'];
      if (admission && admission !== 'overlap' && admission !== 'strict') {
        throw new HoopError(
          'USAGE',
          `HOOP_AGENT_ADMISSION "${admission}" must be overlap or strict`,
          {
            hint: 'overlap (the default) logs in to the target while the broker records the session; strict waits until it has.',
          },
        );
      }
      const direct = directEndpointOf(opts.pgListen ?? c.env['HOOP_AGENT_PG_LISTEN'], c.env);
      const instance = new Agent({
        brokerUrl,
        token,
        logger,
        ...(direct === undefined ? {} : { direct }),
        env: c.env,
        ...(admission === 'strict' ? { waitForAdmit: false } : {}),
        ...(warmConnections === undefined
          ? {}
          : { engines: defaultEngines(logger, { postgresWarmConnections: warmConnections }) }),
        spool: {
          ...(c.env['HOOP_SPOOL_DIR'] ? { dir: c.env['HOOP_SPOOL_DIR'] } : {}),
          ...(maxBytes === undefined ? {} : { maxBytes }),
          ...(fsync ? { fsync: fsync as 'always' | 'batch' } : {}),
        },
      });
      instance.on('quarantine', (info) => {
        const event = { event: 'spool-quarantined', ...info };
        if (c.out.json) process.stdout.write(`${JSON.stringify(event)}\n`);
        else
          c.out.progress(`hoop agent: quarantined corrupt spool file ${info.file}: ${info.reason}`);
      });
      instance.on('state', (state, error) => {
        const event = {
          event: 'state',
          state,
          ...(error === undefined ? {} : { error: error.toJSON() }),
        };
        if (c.out.json) process.stdout.write(`${JSON.stringify(event)}\n`);
        else if (state === 'connected') c.out.line(`hoop agent connected to ${brokerUrl}`);
        else if (state === 'waiting' && error !== undefined)
          c.out.progress(`hoop agent: ${error.message}; retrying…`);
      });
      instance.start();
      if (direct !== undefined) {
        const port = await instance.listenDirect().catch(async (err: unknown) => {
          await instance.stop();
          throw new HoopError(
            'USAGE',
            `cannot listen on ${direct.host}:${direct.port} for the direct endpoint: ${(err as Error).message}`,
            { hint: 'Pick another HOOP_AGENT_PG_LISTEN address, or stop what uses this one.' },
          );
        });
        const tls = direct.tls === undefined ? 'disable' : 'require';
        if (c.out.json) {
          process.stdout.write(
            `${JSON.stringify({ event: 'direct-endpoint', host: direct.host, port })}\n`,
          );
        } else {
          c.out.line(
            `hoop agent: direct Postgres endpoint on ${direct.host}:${port}: psql "host=${direct.host} port=${port} user=<connection> password=<hoop token> sslmode=${tls}"`,
          );
        }
      }
      await serveUntilSignal(logger);
      await instance.stop();
    });
}

/** The direct endpoint's address and TLS files (HOOP_AGENT_PG_TLS_CERT, …_KEY), if it is on. */
function directEndpointOf(
  listen: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): { host: string; port: number; tls?: { cert: Buffer; key: Buffer } } | undefined {
  const certFile = env['HOOP_AGENT_PG_TLS_CERT'];
  const keyFile = env['HOOP_AGENT_PG_TLS_KEY'];
  if (!listen) {
    if (certFile || keyFile) {
      throw new HoopError('USAGE', 'HOOP_AGENT_PG_TLS_CERT and _KEY need HOOP_AGENT_PG_LISTEN');
    }
    return undefined;
  }
  const address = parseListen(listen);
  if (!certFile && !keyFile) return address;
  if (!certFile || !keyFile) {
    throw new HoopError('USAGE', 'HOOP_AGENT_PG_TLS_CERT and HOOP_AGENT_PG_TLS_KEY go together', {
      hint: 'Set both to PEM files (certificate and key) or neither.',
    });
  }
  const read = (file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new HoopError('USAGE', `cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return { ...address, tls: { cert: read(certFile), key: read(keyFile) } };
}
