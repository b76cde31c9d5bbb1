export { createBaileysTransport } from './baileys-transport.js';
export { messageContent } from './message-content.js';
export type { BaileysTransport } from './baileys-transport.js';
export type { BaileysTransportOptions, TypingOptions } from './options.js';
export type { BaileysSocket } from './types.js';
export { messageIdFor, MESSAGE_ID_PATTERN } from './message-id.js';
export { classifyBaileysError, disconnectCode, stopReasonForCode, DISCONNECT_REASON, STOP_CODES, TRANSIENT_CLOSE_CODES } from './classify.js';
export type { ClassifyOptions, Operation } from './classify.js';
export { mapConnectionUpdate, mapMessagesUpdate, mapMessagesUpsert, mapMessageCapping, MESSAGE_STATUS, SERVER_ERROR } from './events.js';
/** Shared with every transport; kept here for existing imports. */
export { phoneFromJid, jidFromPhone, numberVariants } from '@disparo/core/transport';
