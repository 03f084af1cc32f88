export { TunnelClient, type TunnelClientOptions, tunnelUrl, zeroMask } from './client.js';
export {
  ConnectionState,
  FrameConnection,
  type FrameConnectionHandlers,
  type FrameConnectionOptions,
  type HelloOptions,
} from './connection.js';
export { TunnelEndpoint, type TunnelEndpointOptions } from './endpoint.js';
export {
  decodeWindow,
  encodeFrame,
  encodeHeader,
  encodeWindow,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameKind,
  isFrameKind,
  MAX_STREAM_ID,
  rewriteStream,
  TUNNEL_STREAM,
} from './frame.js';
export { Heartbeat } from './heartbeat.js';
export {
  defaultTunnelLimits,
  EARLY_DATA_MAX_BYTES,
  resolveLimits,
  type TunnelLimits,
} from './limits.js';
export { MemorySocket } from './memory-socket.js';
export {
  type AdmitMessage,
  type AuditAckMessage,
  type AuditBatchMessage,
  type CloseMessage,
  type ControlMessage,
  DIRECT_TICKET_RE,
  decodeControl,
  type ErrorBody,
  encodeControl,
  errorBodyOf,
  type HelloMessage,
  hoopErrorOf,
  MAX_REVIEW_STATEMENT_BYTES,
  type OpenConnectionMessage,
  type OpenErrorMessage,
  type OpenOkMessage,
  type OpenSessionMessage,
  PROTOCOL_VERSION,
  type ReviewDecisionMessage,
  type ReviewPendingMessage,
  type ReviewRequestMessage,
  StatementReviewMode,
  type TerminateMessage,
  type TunnelErrorMessage,
  TunnelRole,
} from './messages.js';
export { FrameReader } from './reader.js';
export { FrameSender } from './sender.js';
export { messageBuffer, type WebSocketLike, WS_OPEN } from './socket.js';
export { type StreamLink, StreamState, TunnelStream, type TunnelStreamOptions } from './stream.js';
