export * from './errors.js';
export * from './types.js';
export * from './store.js';
export * from './transport.js';
export * from './clock.js';
export * from './state-machine.js';
export { MemoryStore, createMemoryStore } from './memory-store.js';
export { SimulatorTransport, createSimulatorTransport } from './simulator.js';
export type { SimulatorOptions, SimulatorSendRecord } from './simulator.js';
