/**
 * @hoop/e2e: end-to-end tests with real processes (`*.e2e.test.ts`) and the disposable harness
 * they use — the real `hoop` CLI as broker, agent and `hoop connect` processes, psql, raw
 * tunnel WebSockets, a tiny Postgres frontend, and RSS sampling.
 */
export { type ConnectionPassword, type ConnectionView, Deployment } from './support/deployment.js';
export { type Env, isolatedEnv, tempDir, withEnv } from './support/env.js';
export {
  type AgentEvent,
  AgentProcess,
  BrokerProcess,
  ConnectProcess,
  type ConnectReady,
  type HoopResult,
  hoopBin,
  READY_TIMEOUT_MS,
  repoRoot,
  runHoop,
  runHoopJson,
  type StartAgentOptions,
  type StartBrokerOptions,
  spawnHoop,
  startAgent,
  startBroker,
  startConnect,
} from './support/hoop.js';
export { PgServerError, type QueryOutcome, RawPgClient } from './support/pg-wire.js';
export {
  ChildHandle,
  type Exit,
  runToExit,
  type SpawnOptions,
  type StopResult,
} from './support/process.js';
export { type PsqlResult, psqlEnv, psqlValue, runPsql, spawnPsql } from './support/psql.js';
export { idleRss, MiB, mib, RssSampler, readRss } from './support/rss.js';
export { Scope } from './support/scope.js';
export { directUrl, machinePostgres, type PgTarget, scramPostgres } from './support/targets.js';
export { sleep, waitFor, withTimeout } from './support/wait.js';
export {
  frame,
  helloFrame,
  Kind,
  type ProbeOutcome,
  probe,
  refusedUpgrade,
} from './support/ws-probe.js';
