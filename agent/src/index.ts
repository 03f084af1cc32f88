/** @hoop/agent: the tunnel client and the protocol engines it runs next to the targets. */
export { Agent, type AgentEvents, type AgentOptions, AgentState } from './agent.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { resolveCredential } from './credentials.js';
export type { Engine, EngineSession, ResolvedCredential } from './engines/engine.js';
export { PacketReader, type PgMessage, type StartupPacket } from './engines/postgres/reader.js';
export { parseReviewErrorDetail } from './engines/postgres/review-gate.js';
export { StreamSource } from './engines/postgres/source.js';
export {
  cancelRequest,
  encodeMessage,
  errorResponse,
  startupMessage,
} from './engines/postgres/writer.js';
export { refuseClient } from './engines/refusal.js';
export { defaultEngines, EngineRegistry } from './engines/registry.js';
