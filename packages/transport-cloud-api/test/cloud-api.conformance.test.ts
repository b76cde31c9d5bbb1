import { describeTransport } from '@disparo/core/testing';
import { cloudApiHarness } from './conformance-harness.js';

// Core's transport conformance suite, against the real transport and the fake Graph server.
describeTransport('cloud-api', cloudApiHarness, {
  require: ['failNext', 'received', 'holdNext', 'parseWebhook'],
  // The Cloud API has no connection to drop, no number check, no lookup, no typing endpoint for campaigns.
});
