export { describeStateStore } from './store-suite.js';
export type { StoreFactory, StoreInspector, StoreSuiteOptions } from './store-suite.js';
export { describeTransport } from './transport-suite.js';
export type { TransportSuiteOptions } from './transport-suite.js';
export { VirtualClock } from '../clock.js';
