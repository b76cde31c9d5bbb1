import { describeTransport } from '@disparo/core/testing';
import { baileysHarness } from './harness.js';

// Core's transport conformance suite: the real transport over the fake socket.
describeTransport('baileys', () => baileysHarness(), {
  // Everything a socket transport can do must pass (webhooks do not apply: events arrive on the socket).
  require: ['failNext', 'markNotOnWhatsApp', 'disconnect', 'reconnect', 'received', 'holdNext', 'emitInbound', 'connectionState', 'checkNumbers', 'lookup', 'subscribe', 'typing'],
});
