/**
 * `hoop up` (what `npm start` runs): everything on embedded defaults in one process — the broker
 * on its PGlite store, an embedded agent, and a `demo` Postgres connection backed by an embedded
 * database — then logs this CLI in and prints exactly what to run next.
 */
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Broker } from '@hoop/broker';
import { HoopError } from '@hoop/shared';
import type { Command } from 'commander';
import { configPath, readConfigFile, writeConfigFile } from '../config.js';
import type { CommandContext } from '../context.js';
import { serveUntilSignal } from '../signals.js';
import { DEFAULT_CONNECT_PORT } from './connect.js';

const AGENT_NAME = 'local';
const DEMO_CONNECTION = 'demo';

async function readSecretFile(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  const value = (await readFile(path, 'utf8')).trim();
  return value === '' ? undefined : value;
}

export function upCommand(program: Command, ctx: () => CommandContext): void {
  program
    .command('up')
    .description('start broker, embedded agent and a demo database on embedded defaults')
    .option('--listen <host:port>', 'broker address (HOOP_LISTEN, default 127.0.0.1:8009)')
    .option('--data-dir <dir>', 'data directory (HOOP_DATA_DIR, default ~/.hoop/data)')
    .option('--no-login', 'do not write the CLI config file')
    .action(async (opts: { listen?: string; dataDir?: string; login: boolean }) => {
      const [
        { Agent },
        {
          brokerConfigFromEnv,
          defaultDataDir,
          initializePgliteDataDirs,
          isPgliteDataDir,
          pgliteStoreDir,
          startBroker,
        },
        { startDemoDatabase },
      ] = await Promise.all([
        import('@hoop/agent'),
        import('@hoop/broker'),
        import('../up/demo-database.js'),
      ]);
      const c = ctx();
      const logger = c.serviceLogger;
      const input = brokerConfigFromEnv(c.env as NodeJS.ProcessEnv);
      if (opts.listen !== undefined) input.listen = opts.listen;
      if (opts.dataDir !== undefined) input.dataDir = opts.dataDir;
      const dataDir = input.dataDir ?? defaultDataDir();
      input.dataDir = dataDir;

      const demoDir = join(dataDir, 'demo-db');
      if (input.databaseUrl === undefined || input.databaseUrl === '') {
        // First run: one initdb (seconds) for the store and the demo database, not two.
        const dirs = [pgliteStoreDir(dataDir), demoDir];
        if (!dirs.every(isPgliteDataDir)) {
          c.out.progress('Creating the embedded databases (first run, a few seconds)…');
          await initializePgliteDataDirs(dirs);
        }
      }
      // Both at once: the demo database runs on this thread, the broker's store on its own.
      c.out.progress('Starting the demo database (embedded PostgreSQL) and the broker…');
      const [demoStarted, brokerStarted] = await Promise.allSettled([
        startDemoDatabase({ dataDir: demoDir }),
        startBroker(input, { logger: logger.child({ component: 'broker' }) }),
      ]);
      if (demoStarted.status === 'rejected') {
        if (brokerStarted.status === 'fulfilled') await brokerStarted.value.close();
        throw demoStarted.reason;
      }
      const demo = demoStarted.value;
      if (brokerStarted.status === 'rejected') {
        await demo.close();
        throw brokerStarted.reason;
      }
      const broker: Broker = brokerStarted.value;

      // The embedded agent's token lives in a 0600 file so restarts reuse the same agent.
      const agentTokenFile = join(dataDir, 'embedded-agent.token');
      let agentToken = await readSecretFile(agentTokenFile);
      const agents = await broker.store.listAgents();
      if (agentToken === undefined || !agents.some((a) => a.name === AGENT_NAME)) {
        if (agents.some((a) => a.name === AGENT_NAME)) {
          for (const conn of await broker.store.listConnections()) {
            if (conn.agent === AGENT_NAME) await broker.store.deleteConnection(conn.name);
          }
          await broker.store.deleteAgent(AGENT_NAME);
        }
        agentToken = (await broker.store.createAgent(AGENT_NAME)).token;
        await writeFile(agentTokenFile, `${agentToken}\n`, { mode: 0o600 });
        await chmod(agentTokenFile, 0o600);
      }
      // The demo database gets a fresh port each run: (re)point the demo connection at it.
      const existing = (await broker.store.listConnections()).find(
        (x) => x.name === DEMO_CONNECTION,
      );
      if (existing !== undefined) await broker.store.deleteConnection(DEMO_CONNECTION);
      await broker.store.createConnection({
        name: DEMO_CONNECTION,
        agent: AGENT_NAME,
        type: 'postgres',
        host: demo.host,
        port: demo.port,
        user: demo.user,
        database: demo.database,
        tls: 'disable',
      });

      c.out.progress('Connecting the embedded agent…');
      const agent = new Agent({
        brokerUrl: broker.url,
        token: agentToken,
        logger: logger.child({ component: 'agent' }),
        env: c.env,
        name: AGENT_NAME,
      });
      agent.start();
      try {
        await agent.waitConnected(15_000);
      } catch (err) {
        await agent.stop();
        await broker.close();
        await demo.close();
        throw err;
      }

      // Log this CLI in as the admin when we know the admin token and nothing else is configured.
      const adminToken =
        broker.config.adminToken ?? (await readSecretFile(join(dataDir, 'admin.token')));
      const cfgPath = configPath(c.env);
      let loggedIn = false;
      if (opts.login && adminToken !== undefined) {
        const current = await readConfigFile(cfgPath);
        if (current.brokerUrl === undefined || current.brokerUrl === broker.url) {
          await writeConfigFile(cfgPath, { brokerUrl: broker.url, token: adminToken });
          loggedIn = true;
        }
      }

      const psql = `psql "postgresql://127.0.0.1:${DEFAULT_CONNECT_PORT}/${demo.database}?sslmode=disable" -c 'select name, email, card_number from customers limit 5'`;
      c.out.data(
        {
          broker: broker.url,
          dataDir,
          agent: AGENT_NAME,
          connection: DEMO_CONNECTION,
          loggedIn,
          config: cfgPath,
          next: ['npx hoop connect demo', psql],
        },
        () => {
          c.out.line('');
          c.out.line('hoop is up.');
          c.out.line(`  broker      ${broker.url}   (data in ${dataDir})`);
          c.out.line(`  agent       ${AGENT_NAME} (embedded, connected)`);
          c.out.line(
            `  connection  ${DEMO_CONNECTION} → embedded PostgreSQL with a customers table`,
          );
          c.out.line(
            loggedIn
              ? `  you         logged in as admin (${cfgPath})`
              : `  you         not logged in: hoop login --broker ${broker.url} --token "$(cat ${join(dataDir, 'admin.token')})"`,
          );
          c.out.line('');
          c.out.line('Next, in a second terminal (from this folder):');
          c.out.line('  npx hoop connect demo');
          c.out.line('and in a third:');
          c.out.line(`  ${psql}`);
          c.out.line('');
          c.out.line('Then put a policy on it (masks emails and card numbers, blocks DROP & co.):');
          c.out.line(
            '  npx hoop admin connections policy set demo --file examples/demo-policy.yaml',
          );
          c.out.line(
            'and see what was recorded: npx hoop sessions list, npx hoop sessions show ID',
          );
          c.out.line('');
          c.out.line('Press Ctrl-C to stop.');
        },
      );
      await serveUntilSignal(logger);
      c.out.progress('Stopping…');
      await agent.stop();
      await broker.close();
      await demo.close();
    });
}

export { HoopError };
