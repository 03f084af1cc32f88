/**
 * `hoop connect NAME [--port N] [--grant G]`: checks that the connection exists and its agent is
 * online, opens the tunnel, and serves local clients on 127.0.0.1:PORT until Ctrl-C. With a grant
 * (`--grant` or HOOP_GRANT) no login is needed: the grant is the tunnel's bearer and the check is
 * made with it. When the connection's policy requires an access review, it asks for one the way
 * `hoop grants request` does (same options, same wait, `--no-wait` exits 7, `--break-glass`), or
 * takes the grant of an existing one (`--review ID`), and serves on that grant.
 */

import { type ConnectionType, HoopError, TunnelClient } from '@hoop/shared';
import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import { loadConfig } from '../config.js';
import { ConnectListener } from '../connect/listener.js';
import type { CommandContext } from '../context.js';
import { serveUntilSignal } from '../signals.js';
import { parsePort } from './admin-connections.js';
import {
  type AccessOptions,
  accessOptions,
  type ObtainedGrant,
  pickUpReview,
  requestAccess,
} from './request-access.js';

interface ConnectionView {
  name: string;
  type: ConnectionType;
  agent: string;
  agentOnline: boolean;
  database: string;
}

export const DEFAULT_CONNECT_PORT = 5433;

interface ConnectOptions extends AccessOptions {
  port: number;
  host: string;
  grant?: string;
  review?: string;
}

export function connectCommand(program: Command, ctx: () => CommandContext): void {
  accessOptions(program.command('connect <connection>'))
    .description('serve a connection on a local port for your usual client (psql, …)')
    .option(
      '--port <port>',
      'local port (0 picks a free one)',
      (v) => parsePort(v),
      DEFAULT_CONNECT_PORT,
    )
    .option('--host <host>', 'local address to listen on', '127.0.0.1')
    .option('--grant <grant>', 'use this grant instead of your login (or set HOOP_GRANT)')
    .option('--review <id>', 'use the grant of this access review (waits while it is pending)')
    .action(async (name: string, opts: ConnectOptions, command: Command) => {
      const c = ctx();
      const grant = opts.grant || c.env['HOOP_GRANT'] || undefined;
      if (grant !== undefined && (opts.review !== undefined || opts.breakGlass === true)) {
        throw new HoopError('USAGE', '--review and --break-glass ask for a grant: drop --grant');
      }
      let reviewed: ObtainedGrant | undefined;
      let brokerUrl: string;
      let token: string;
      let conn: ConnectionView;
      if (grant !== undefined) {
        brokerUrl = await grantBroker(c, command);
        token = grant;
        conn = await new ApiClient(brokerUrl, grant).get<ConnectionView & { connection: string }>(
          '/api/v1/grants/current',
        );
        if (conn.name !== name) {
          throw new HoopError(
            'GRANT_WRONG_CONNECTION',
            `your grant is for ${conn.name}, not ${name}`,
          );
        }
      } else {
        ({ brokerUrl, token } = await c.broker());
        const api = await c.api();
        conn = await api.get<ConnectionView>(`/api/v1/connections/${encodeURIComponent(name)}`);
        if (opts.review !== undefined) {
          reviewed = await pickUpReview(c, api, name, opts.review, opts);
        } else if (opts.breakGlass === true || (await accessReviewRequired(api, name))) {
          // Just-in-time access: the tunnel runs on the grant the review gives.
          reviewed = await requestAccess(c, api, name, opts);
        }
        if (reviewed !== undefined) token = reviewed.grant;
      }
      if (!conn.agentOnline) {
        throw new HoopError(
          'AGENT_OFFLINE',
          `agent ${conn.agent} of connection ${name} is not connected to the broker`,
        );
      }
      const tunnel = new TunnelClient({ brokerUrl, token, logger: c.logger });
      await tunnel.ready();
      const listener = new ConnectListener({
        connection: name,
        type: conn.type,
        host: opts.host,
        port: opts.port,
        tunnel,
        logger: c.logger,
        onRefused: (error) => {
          if (c.out.json)
            process.stderr.write(
              `${JSON.stringify({ event: 'refused', error: error.toJSON() })}\n`,
            );
          else
            process.stderr.write(
              `hoop: a client connection was refused: ${error.message} (${error.code})\n`,
            );
        },
      });
      let address: { address: string; port: number };
      try {
        address = await listener.listen();
      } catch (err) {
        tunnel.close();
        throw err;
      }
      const host = address.address.includes(':') ? `[${address.address}]` : address.address;
      const url = `postgresql://${host}:${address.port}/${encodeURIComponent(conn.database)}?sslmode=disable`;
      c.out.data(
        {
          connection: name,
          type: conn.type,
          host: address.address,
          port: address.port,
          url,
          ...(reviewed?.review === undefined
            ? {}
            : { review: reviewed.review.id, grantExpiresAt: reviewed.expiresAt }),
        },
        () => {
          c.out.line(
            `✔ ${name} (${conn.type} via agent ${conn.agent}) is ready on ${host}:${address.port}`,
          );
          c.out.line(`  psql "${url}"`);
          c.out.line(
            reviewed !== undefined
              ? `  Your client needs no password: access comes from review ${reviewed.review?.id ?? ''}${reviewed.review?.breakGlass ? ' (break-glass)' : ''}, until ${reviewed.expiresAt}. Ctrl-C to stop.`
              : grant === undefined
                ? '  Your client needs no password: access comes from your hoop login. Ctrl-C to stop.'
                : '  Your client needs no password: access comes from your grant, until it expires. Ctrl-C to stop.',
          );
        },
      );
      await serveUntilSignal(c.logger);
      await listener.close();
      tunnel.close();
    });
}

/** Whether the connection's policy says no session without an approved access review. */
async function accessReviewRequired(api: ApiClient, name: string): Promise<boolean> {
  const policy = await api.get<{ reviews?: { access?: { required?: boolean } } }>(
    `/api/v1/connections/${encodeURIComponent(name)}/policy`,
  );
  return policy.reviews?.access?.required === true;
}

/** The broker URL for a grant-only connect: --broker, HOOP_BROKER_URL or the config file. */
async function grantBroker(c: CommandContext, command: Command): Promise<string> {
  const flag = command.optsWithGlobals<{ broker?: string }>().broker;
  const { brokerUrl } = await loadConfig(c.env, { brokerUrl: flag });
  if (brokerUrl === undefined) {
    throw new HoopError('USAGE', 'no broker configured', {
      hint: 'Pass --broker URL or set HOOP_BROKER_URL to use a grant.',
    });
  }
  return brokerUrl;
}
