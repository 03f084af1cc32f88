/** Engines by connection type. */
import { type ConnectionType, HoopError, type Logger } from '@hoop/shared';
import type { Engine } from './engine.js';
import { PostgresEngine } from './postgres/engine.js';

export class EngineRegistry {
  private readonly engines = new Map<ConnectionType, Engine>();

  register(engine: Engine): void {
    this.engines.set(engine.type, engine);
  }

  get(type: ConnectionType): Engine {
    const engine = this.engines.get(type);
    if (engine === undefined) {
      throw new HoopError(
        'UNSUPPORTED_CONNECTION_TYPE',
        `this agent has no engine for ${type} connections`,
      );
    }
    return engine;
  }

  async close(): Promise<void> {
    await Promise.all([...this.engines.values()].map((e) => e.close?.()));
  }
}

/** Settings of the default engines an operator can change (`hoop agent start`'s environment). */
export interface EngineSettings {
  /** Warm target connections per target and client parameter set (HOOP_PG_WARM; 0 = off). */
  readonly postgresWarmConnections?: number;
}

export function defaultEngines(logger: Logger, settings: EngineSettings = {}): EngineRegistry {
  const registry = new EngineRegistry();
  registry.register(
    new PostgresEngine({
      logger: logger.child({ engine: 'postgres' }),
      ...(settings.postgresWarmConnections === undefined
        ? {}
        : { warmConnections: settings.postgresWarmConnections }),
    }),
  );
  return registry;
}
