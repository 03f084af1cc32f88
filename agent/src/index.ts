/** @hoop/agent: the tunnel client and the protocol engines it runs next to the targets. */
export { Agent, type AgentEvents, type AgentOptions, AgentState } from './agent.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { resolveCredential } from './credentials.js';
export type { Engine, EngineSession, ResolvedCredential } from './engines/engine.js';
export { defaultEngines, EngineRegistry } from './engines/registry.js';
export * from './postgres-wire.js';
