/** The broker's store: database backends, schema, secrets at rest and token hashing. */

export type { StoredAuditEvent } from './audit.js';
export type { CreateConnectionInput } from './connections.js';
export { guard, isViolation, mapViolation, nowOf, type StoreContext } from './context.js';
export {
  type Database,
  type DatabaseKind,
  type Db,
  defaultMigrationsFolder,
  type OpenDatabaseOptions,
  openDatabase,
  pgliteStoreDir,
  redactUrl,
  type Schema,
} from './database.js';
export {
  type InitializedDirs,
  initializePgliteDataDir,
  initializePgliteDataDirs,
  isPgliteDataDir,
} from './pglite-init.js';
export type {
  AgentInfo,
  AuthenticatedUser,
  ConnectionCredentialKind,
  ConnectionInfo,
  ResolvedConnection,
  SessionInfo,
  UserInfo,
  UserTokenInfo,
} from './records.js';
export { type SessionStatus, sessionStatuses, type UserRole, userRoles } from './schema.js';
export {
  decryptSecret,
  encryptSecret,
  type LoadMasterKeyOptions,
  loadMasterKey,
  MASTER_KEY_BYTES,
  MASTER_KEY_FILE,
  parseMasterKey,
  SecretDecryptionError,
  type SecretDecryptionFailure,
} from './secrets.js';
export {
  BROKER_RESTARTED,
  type CreateSessionInput,
  type EndSessionInput,
  type ListSessionsOptions,
  SESSION_LIST_DEFAULT_LIMIT,
  SESSION_LIST_MAX_LIMIT,
} from './sessions.js';
export { Store, type StoreOptions } from './store.js';
export {
  constantTimeEqual,
  generateToken,
  hashToken,
  TOKEN_BYTES,
  type TokenPrefix,
  tokenPrefixes,
  tokenPrefixOf,
} from './tokens.js';
export {
  ADMIN_USER_NAME,
  type BootstrapOptions,
  type BootstrapResult,
  type CreateUserInput,
  type CreateUserTokenOptions,
} from './users.js';
export { NAME_PATTERN } from './validation.js';
export { useBaselineWasmCompiler } from './wasm-tier.js';
