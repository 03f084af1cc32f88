/** What every command gets: environment, output, logger, and the broker client when needed. */
import { createLogger, type Logger } from '@hoop/shared';
import { ApiClient } from './api-client.js';
import { type Env, loadConfig, requireBroker } from './config.js';
import { createOutput, type Output } from './output.js';

export interface CommandContext {
  readonly env: Env;
  readonly out: Output;
  readonly logger: Logger;
  /** Logger for long-running services (broker, agent, up): info by default. */
  readonly serviceLogger: Logger;
  api(): Promise<ApiClient>;
  broker(): Promise<{ brokerUrl: string; token: string }>;
}

export interface GlobalOptions {
  json?: boolean;
  broker?: string;
  verbose?: boolean;
}

export function createContext(env: Env, options: GlobalOptions): CommandContext {
  const out = createOutput(options.json === true);
  const logger = createLogger({
    level: options.verbose ? 'debug' : ((env['HOOP_LOG_LEVEL'] as 'info' | undefined) ?? 'warn'),
    format: env['HOOP_LOG_FORMAT'] === 'json' ? 'json' : 'pretty',
  });
  const serviceLogger = createLogger({
    level: options.verbose ? 'debug' : ((env['HOOP_LOG_LEVEL'] as 'info' | undefined) ?? 'info'),
    format: env['HOOP_LOG_FORMAT'] === 'json' ? 'json' : 'pretty',
  });
  const broker = async () => requireBroker(await loadConfig(env, { brokerUrl: options.broker }));
  return {
    env,
    out,
    logger,
    serviceLogger,
    broker,
    api: async () => {
      const { brokerUrl, token } = await broker();
      return new ApiClient(brokerUrl, token);
    },
  };
}
