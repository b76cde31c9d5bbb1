import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '@disparo/core/transport';
import { VirtualClock } from '@disparo/core/testing';
import { pacingRecommendation, readCloudApiHealth, type QualitySignal } from '@disparo/transport-cloud-api';
import { FakeGraph } from './fake-graph.js';
import { fixture } from './fixtures.js';
import { transportFor } from './helpers.js';

let fake: FakeGraph;
beforeEach(async () => {
  fake = await FakeGraph.start();
});
afterEach(async () => {
  await fake.close();
});

describe('health()', () => {
  it("reads quality_rating, throughput and the portfolio's messaging limit (not the deprecated tier) in one GET", async () => {
    const clock = new VirtualClock(1_748_769_000_000);
    const health = await transportFor(fake, { clock }).health();
    const [call] = fake.requests;
    expect(call!.method).toBe('GET');
    expect(call!.path).toBe(`/v23.0/${fake.phoneNumberId}`);
    expect(call!.headers.authorization).toBe(`Bearer ${fake.accessToken}`);
    expect(call!.query.fields!.split(',')).toEqual(expect.arrayContaining(['quality_rating', 'throughput', 'whatsapp_business_manager_messaging_limit']));
    expect(call!.query.fields).not.toContain('messaging_limit_tier');

    const response = fixture('cloudapi.phoneNumber.quality.response.json');
    expect(health).toEqual({
      ok: true,
      at: 1_748_769_000_000,
      phoneNumberId: fake.phoneNumberId,
      qualityRating: response.quality_rating,
      throughputLevel: response.throughput.level,
      messagingLimit: { tier: 'TIER_2K', uniqueRecipientsPerDay: 2_000 },
      displayPhoneNumber: '5511988880000',
      verifiedName: response.verified_name,
      recommendation: expect.objectContaining({ action: 'normal', ratePerSecond: 80, dailyCap: 2_000 }),
    });
  });

  it('YELLOW slows the recommendation down; the transport policy applies', async () => {
    fake.numbers.get(fake.phoneNumberId)!.qualityRating = 'YELLOW';
    const health = await transportFor(fake, { pacing: { ratePerSecond: 60, yellowFactor: 0.5 } }).health();
    expect(health.recommendation).toMatchObject({ action: 'slow', ratePerSecond: 30, minIntervalMs: 34 });
  });

  it('never throws: an expired token comes back as ok:false with the error, and the configured rate', async () => {
    const health = await transportFor(fake, { accessToken: 'expired' }).health();
    expect(health).toMatchObject({ ok: false, error: { kind: 'account', providerCode: 190 } });
    expect(health.error!.message).toContain('refresh the access token');
    expect(health.recommendation).toMatchObject({ action: 'normal', ratePerSecond: 80 });
  });

  it.each([
    ['a 500 without a Graph error', { status: 500, raw: 'boom' }],
    ['a dropped connection', { destroy: true }],
    ['a 200 that is not JSON', { status: 200, raw: 'ok' }],
  ])('never throws, and never says ambiguous (a read sends nothing): %s', async (_name, reply) => {
    fake.next(reply, 'phoneNumber');
    const health = await transportFor(fake).health();
    expect(health.ok).toBe(false);
    expect(health.error!.kind).toBe('transient');
  });

  it('never throws when Meta does not answer within healthTimeoutMs', async () => {
    fake.latencyMs = 1_000;
    const started = Date.now();
    const health = await transportFor(fake, { healthTimeoutMs: 100 }).health();
    expect(Date.now() - started).toBeLessThan(900);
    expect(health).toMatchObject({ ok: false, error: { kind: 'transient', providerCode: 'timeout' } });
  });

  it('readCloudApiHealth works without a transport', async () => {
    const health = await readCloudApiHealth({ phoneNumberId: fake.phoneNumberId, accessToken: fake.accessToken, baseUrl: fake.url });
    expect(health).toMatchObject({ ok: true, qualityRating: 'GREEN' });
  });
});

describe('pacingRecommendation (pure)', () => {
  const cases: Array<[string, QualitySignal, Parameters<typeof pacingRecommendation>[1], Partial<ReturnType<typeof pacingRecommendation>>]> = [
    ['GREEN keeps the configured rate', { qualityRating: 'GREEN' }, {}, { action: 'normal', ratePerSecond: 80, pauseMarketing: false }],
    ['unknown quality keeps it too', {}, { ratePerSecond: 20 }, { action: 'normal', ratePerSecond: 20, minIntervalMs: 50 }],
    ['YELLOW halves it', { qualityRating: 'YELLOW' }, {}, { action: 'slow', ratePerSecond: 40 }],
    ['RED quarters it by default', { qualityRating: 'RED' }, {}, { action: 'slow', ratePerSecond: 20 }],
    ['RED with red: pause pauses marketing', { qualityRating: 'RED' }, { red: 'pause' }, { action: 'pause_marketing', pauseMarketing: true, ratePerSecond: 20 }],
    ['FLAGGED is treated as RED', { event: 'FLAGGED' }, { redFactor: 0.1 }, { action: 'slow', ratePerSecond: 8 }],
    ['DOWNGRADE is treated as RED', { event: 'DOWNGRADE' }, { red: 'pause' }, { action: 'pause_marketing' }],
    ['UNFLAGGED is back to normal', { event: 'UNFLAGGED' }, {}, { action: 'normal', ratePerSecond: 80 }],
    ['THROUGHPUT_UPGRADE raises to 1,000 only when allowed', { event: 'THROUGHPUT_UPGRADE' }, { allowThroughputUpgrade: true }, { ratePerSecond: 1_000, raised: true, minIntervalMs: 1 }],
    ['THROUGHPUT_UPGRADE without permission keeps the rate', { event: 'THROUGHPUT_UPGRADE' }, {}, { ratePerSecond: 80, raised: false }],
    ['throughput.level HIGH with permission, to a chosen rate', { throughputLevel: 'HIGH' }, { allowThroughputUpgrade: true, upgradedRatePerSecond: 500 }, { ratePerSecond: 500, raised: true }],
    ['STANDARD caps a configured rate above 80', { throughputLevel: 'STANDARD' }, { ratePerSecond: 1_000 }, { ratePerSecond: 80 }],
    ['HIGH but YELLOW: raised, then halved', { throughputLevel: 'HIGH', qualityRating: 'YELLOW' }, { allowThroughputUpgrade: true }, { action: 'slow', ratePerSecond: 500, raised: true }],
    ['the messaging limit becomes the daily cap', { messagingLimit: { tier: 'TIER_10K', uniqueRecipientsPerDay: 10_000 } }, {}, { dailyCap: 10_000 }],
  ];

  it.each(cases)('%s', (_name, signal, policy, expected) => {
    const r = pacingRecommendation(signal, policy);
    expect(r).toMatchObject(expected);
    expect(r.reasons.length).toBeGreaterThan(0);
  });

  it('a bad policy is a ValidationError naming the field', () => {
    try {
      pacingRecommendation({}, { yellowFactor: 2 });
      throw new Error('expected a ValidationError');
    } catch (error) {
      expect(ValidationError.isInstance(error) && error.field).toBe('yellowFactor');
    }
  });
});
