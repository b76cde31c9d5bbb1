import { describeTransport } from '@disparo/core/testing';
import { evolutionHarness } from './conformance-harness.js';

// Core's transport conformance suite, against the real transport and the fake Evolution server.
describeTransport('evolution', evolutionHarness, {
  // Everything Evolution can do must pass; push events (subscribe/emitInbound) are webhooks here.
  require: ['failNext', 'markNotOnWhatsApp', 'disconnect', 'reconnect', 'received', 'holdNext', 'connectionState', 'checkNumbers', 'lookup', 'parseWebhook', 'typing'],
});
