export { VirtualClock } from '../clock.js';
export { runSimulation } from './simulation.js';
export type { SimulationOptions, SimulationReport } from './simulation.js';
