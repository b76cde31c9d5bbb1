/**
 * @disparo/core: what an application needs. Store authors import `@disparo/core/store`, transport
 * authors `@disparo/core/transport`, tests `@disparo/core/testing`.
 */
export { Engine, createEngine } from './engine/engine.js';
export { DEFAULT_OPT_OUT_KEYWORDS } from './engine/options.js';
export type { AccountConfig, EngineOptions } from './engine/options.js';
export type { CreateCampaignInput, PacingInput, RecipientInput, StepOptions } from './engine/schemas.js';
export type { ImportResult } from './engine/import.js';
export type { AccountReport, Progress } from './engine/reports.js';
export type { StepResult } from './engine/step.js';
export type { TestSendResult } from './engine/preview.js';
export type { EngineEvents, Logger } from './events.js';
export { silentLogger } from './events.js';
export type { Clock } from './clock.js';
export type { BatchRecord, Campaign, CampaignStatus, PauseReason, Recipient, RecipientCounters, RecipientStatus, SkipReason } from './domain/types.js';
export { normalizePhone } from './domain/phone.js';
export { ConflictError, DisparoError, InvalidTransitionError, NotFoundError, ShutdownError, StoreError, TransportError, ValidationError, WebhookError } from './errors.js';
export type { StateStore } from './store/contract.js';
export { MemoryStore, createMemoryStore } from './store/memory/memory-store.js';
export type { Transport, TransportEvent } from './transport/contract.js';
export { SimulatorTransport, createSimulatorTransport } from './transport/simulator/simulator.js';
export type { SimulatorOptions } from './transport/simulator/simulator.js';
