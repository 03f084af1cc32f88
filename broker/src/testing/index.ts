/** @hoop/broker/testing: a broker, agents and connections in this process, for tests. */
export {
  type ApiBody,
  type ApiReply,
  addEchoConnection,
  addLocalPgConnection,
  EchoEngine,
  echoEngines,
  startTestBroker,
  type TestAgentOptions,
  type TestBroker,
  type TestBrokerOptions,
} from './in-process.js';
