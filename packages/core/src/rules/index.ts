export { ACCOUNT_USABILITY_RULES, accountUsability, isUsable, earliestReturn, type AccountUsability } from './accounts.js';
export { SLOT_CHECKS, nextSendAfterSettling, reserveSlots, type AccountSlots, type Grant, type SlotItem, type SlotRefusal, type SlotRequest } from './slots.js';
export { DELIVERY_TRANSITIONS, HELD_RECEIPT_MS, deliveryTransition, holdsReceipt, type DeliveryUpdate } from './delivery.js';
export { BATCH_COUNT, emptyCounters, isOpen, moveCount } from './counters.js';
export { OPT_OUT_CANCELS, batchForRow, failuresAfter, outcomeApplies } from './recipients.js';
