/** @disparo/core/testing: conformance suites for stores and transports, the simulation, virtual time. ESM only (it uses vitest). */
export { VirtualClock } from './virtual-clock.js';
export { runSimulation } from './simulation/simulation.js';
export type { SimulationOptions, SimulationReport } from './simulation/simulation.js';
export { describeStateStore } from './store-suite/suite.js';
export type { StoreFactory, StoreInspector, StoreSuiteOptions } from './store-suite/suite.js';
export { describeTransport } from './transport-suite/suite.js';
export type { ReceivedMessage, ScriptedFailure, TransportCapability, TransportHarness, TransportScript, TransportSuiteOptions } from './transport-suite/suite.js';
export { samplePhones } from './fixtures.js';
/** The conformance suite's fixtures: a draft campaign of account `a1`, and pacing with nothing set, each with overrides. */
export { newCampaign, pacing } from './store-suite/harness.js';
export { seededRandom } from '../random.js';
