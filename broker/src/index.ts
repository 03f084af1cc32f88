/** @hoop/broker: the HTTP API, tunnel hub and store. */
export { type Broker, type StartBrokerOptions, startBroker } from './broker.js';
export {
  type BrokerConfig,
  type BrokerConfigInput,
  brokerConfigFromEnv,
  defaultDataDir,
  parseListen,
  resolveBrokerConfig,
} from './config.js';
export {
  initializePgliteDataDir,
  initializePgliteDataDirs,
  isPgliteDataDir,
  pgliteStoreDir,
  useBaselineWasmCompiler,
} from './store/index.js';
export { BROKER_VERSION } from './version.js';
