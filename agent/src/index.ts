/** @hoop/agent: the tunnel client and the protocol engines it runs next to the targets. */
export { Agent, type AgentEvents, type AgentOptions, AgentState } from './agent.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { resolveCredential } from './credentials.js';
export type { Engine, EngineSession, ResolvedCredential } from './engines/engine.js';
export { MAX_WARM_PER_KEY } from './engines/postgres/engine.js';
export { defaultEngines, EngineRegistry, type EngineSettings } from './engines/registry.js';
export * from './postgres-wire.js';
