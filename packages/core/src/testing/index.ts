export { VirtualClock } from '../clock.js';
export { runSimulation } from './simulation.js';
export type { SimulationOptions, SimulationReport } from './simulation.js';
export { describeStateStore } from './store-suite.js';
export type { StoreFactory, StoreInspector, StoreSuiteOptions } from './store-suite.js';
export { describeTransport } from './transport-suite.js';
export type { ReceivedMessage, ScriptedFailure, TransportCapability, TransportHarness, TransportScript, TransportSuiteOptions } from './transport-suite.js';
export * from './fixtures.js';
