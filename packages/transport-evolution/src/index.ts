export { createEvolutionTransport, registerEvolutionWebhook } from './evolution-transport.js';
export type { EvolutionTransport } from './evolution-transport.js';
export type { EvolutionConnectionOptions, EvolutionTransportOptions } from './options.js';
export { classifyEvolutionError } from './classify.js';
export type { ClassifyInput, Operation } from './classify.js';
export { webhookSetRequest, DEFAULT_WEBHOOK_EVENTS, EVOLUTION_WEBHOOK_EVENTS, DEFAULT_SECRET_HEADER } from './webhook-set.js';
export type { EvolutionWebhookEvent, WebhookSetInput, WebhookSetRequest } from './webhook-set.js';
export { parseEvolutionWebhook, evolutionWebhookInstance, stopReasonForCode } from './webhook.js';
export type { ParsedWebhook, SentRecord } from './webhook.js';
export { verifyWebhookAuth, verifyHs256Jwt, createEvolutionWebhookJwt, JWT_LEEWAY_SECONDS } from './webhook-auth.js';
export type { WebhookHeaders } from './webhook-auth.js';
/** Shared with every transport; kept here for existing imports. */
export { phoneFromJid, numberVariants } from '@disparo/core/transport';
