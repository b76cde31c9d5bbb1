/**
 * @disparo/core/transport: for transport authors. The `Transport` contract, its errors, the one
 * outbound-message schema, and helpers every provider needs (WhatsApp addresses with every national
 * variant, abort signals, reading message content).
 */
export type * from './contract.js';
export { outboundMessageSchema, outboundContentRules, checkOutbound, fileNameFromUrl, messageText, isPersonMessage, longToNumber, timestampMs, dateMs, sameText, MEDIA_MESSAGE_TYPES, type CheckedOutboundMessage } from './message.js';
export { phoneFromJid, jidFromPhone, normalizeJid, numberVariants } from './jid.js';
export { abortReason, throwIfAborted, raceAbort, isAbortOf } from './abort.js';
export { headerValue, type WebhookHeaders } from './webhook.js';
export { httpRequest, retryAfterMs, type FetchLike, type HttpAnswer, type HttpRequest } from './http.js';
export { nodeFetch } from './node-fetch.js';
export { TransportError, WebhookError, ValidationError, DisparoError, validate, type AccountStopReason, type TransportErrorKind, type TransportErrorOptions } from '../errors.js';
export { systemClock, startTimer, clockOption, type Clock, type NowClock } from '../clock.js';
export type { ConnectionState, MediaSpec } from '../domain/types.js';
export { SimulatorTransport, createSimulatorTransport, type SimulatorOptions, type SimulatorScriptedFailure, type SimulatorSendRecord } from './simulator/simulator.js';
