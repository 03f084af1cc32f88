/** `hoop broker start`: the broker in the foreground (HOOP_LISTEN, HOOP_DATA_DIR, …). */

import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { serveUntilSignal } from '../signals.js';

export function brokerCommand(program: Command, ctx: () => CommandContext): void {
  const broker = program.command('broker').description('run the broker');
  broker
    .command('start')
    .description(
      'start the broker (configured by HOOP_LISTEN, HOOP_DATA_DIR, HOOP_DATABASE_URL, HOOP_MASTER_KEY, HOOP_ADMIN_TOKEN)',
    )
    .option('--listen <host:port>', 'address to listen on (HOOP_LISTEN, default 127.0.0.1:8009)')
    .option('--data-dir <dir>', 'data directory (HOOP_DATA_DIR, default ~/.hoop/data)')
    .option('--pg-listen <host:port>', 'native Postgres endpoint (HOOP_PG_LISTEN); off by default')
    .action(async (opts: { listen?: string; dataDir?: string; pgListen?: string }) => {
      // Loaded here so other commands start fast (the broker pulls in its store).
      const { brokerConfigFromEnv, startBroker, useBaselineWasmCompiler } = await import(
        '@hoop/broker'
      );
      const c = ctx();
      const input = brokerConfigFromEnv(c.env as NodeJS.ProcessEnv);
      if (opts.listen !== undefined) input.listen = opts.listen;
      if (opts.dataDir !== undefined) input.dataDir = opts.dataDir;
      if (opts.pgListen !== undefined) input.pgListen = opts.pgListen;
      // The embedded store is this process's only WebAssembly: ~70 MiB less RSS and half the
      // start-up CPU for somewhat slower store queries (broker/src/store/wasm-tier.ts).
      if (!input.databaseUrl) useBaselineWasmCompiler();
      const logger = c.serviceLogger.child({ component: 'broker' });
      const broker = await startBroker(input, { logger });
      c.out.data(
        {
          url: broker.url,
          dataDir: broker.config.dataDir,
          adminTokenFile: broker.adminTokenFile ?? null,
          // The native Postgres endpoint's port (so `--pg-listen 127.0.0.1:0` can be found).
          pgPort: broker.pgPort ?? null,
        },
        () => {
          c.out.line(
            `hoop broker listening on ${broker.url} (store: ${broker.config.databaseUrl === undefined ? `embedded, ${broker.config.dataDir}` : 'PostgreSQL'})`,
          );
          if (broker.pgPort !== undefined) {
            c.out.line(
              `Postgres clients: psql "host=${broker.config.pgListen?.host} port=${broker.pgPort} user=<connection> password=<hoop token> sslmode=disable"`,
            );
          }
          if (broker.adminTokenFile !== undefined) {
            c.out.line(`Admin token written to ${broker.adminTokenFile} (mode 0600). Log in with:`);
            c.out.line(
              `  hoop login --broker ${broker.url} --token "$(cat ${broker.adminTokenFile})"`,
            );
          }
        },
      );
      await serveUntilSignal(logger);
      await broker.close();
    });
}
