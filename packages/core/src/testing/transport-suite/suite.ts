import { afterEach, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { TransportError, WebhookError, type AccountStopReason, type TransportErrorKind } from '../../errors.js';
import type { OutboundMessage, SendResult, Transport, TransportEvent } from '../../transport/contract.js';
import { samplePhones } from '../fixtures.js';
import { describeValue, digits, expectEvent, expectSendResult, rejection, transportError, until, withTimeout } from './helpers.js';
import type { ReceivedMessage, ScriptedFailure, TransportCapability, TransportHarness, TransportScript, TransportSuiteOptions } from './types.js';

export type * from './types.js';

const ALL_KINDS: readonly TransportErrorKind[] = ['transient', 'rate_limited', 'invalid_recipient', 'permanent', 'account', 'ambiguous'];
const STATES = ['open', 'connecting', 'close', 'unknown'];
const STOP_REASONS: readonly AccountStopReason[] = ['disconnected', 'logged_out', 'banned', 'replaced', 'unauthorized', 'restricted'];

/**
 * The conformance suite every `Transport` runs. `factory` is called once per case and must return
 * a fresh transport on a fresh provider (faked at the wire); the harness `script` lets the suite
 * drive the provider. Cases whose capability is missing are skipped at run time (the factory is
 * what reveals capabilities, so they cannot be known when the file is collected).
 */
export function describeTransport(name: string, factory: () => Promise<TransportHarness> | TransportHarness, options: TransportSuiteOptions = {}): void {
  const phones = options.phones ?? samplePhones(6, 20_260_105);
  if (phones.length < 4 || new Set(phones).size !== phones.length) throw new Error('describeTransport: options.phones needs at least 4 distinct phones');
  const text = options.text ?? 'Olá Maria, seu pedido #1042 foi enviado. Obrigado! ✅';
  const eventTimeoutMs = options.eventTimeoutMs ?? 2_000;
  const required = new Set(options.require ?? []);

  describe(`transport conformance: ${name}`, () => {
    let harness: TransportHarness;
    let keyCounter = 0;

    beforeEach(async () => {
      harness = await factory();
    });
    afterEach(async () => {
      if (harness?.close) await harness.close();
      else await harness?.transport.close?.();
    });

    const t = () => harness.transport;
    const script = (): TransportScript => harness.script ?? {};
    const message = (i = 0, overrides: Partial<OutboundMessage> = {}): OutboundMessage => ({
      to: phones[i % phones.length]!,
      text,
      idempotencyKey: `conformance:${name}:${++keyCounter}`,
      ...overrides,
    });
    const received = async () => (await script().received?.()) ?? null;

    /** Skip the case (or fail it, when required) unless every named capability is present. */
    const need = (ctx: TestContext, ...caps: TransportCapability[]) => {
      for (const cap of caps) {
        const present = cap in SCRIPT_CAPS ? typeof script()[cap as keyof TransportScript] === 'function' : typeof t()[cap as keyof Transport] === 'function';
        if (present) continue;
        if (required.has(cap)) throw new Error(`${name} must support ${cap} (options.require), but the harness/transport has none`);
        ctx.skip(`no ${cap}`);
      }
    };
    const canFail = (ctx: TestContext, kind: TransportErrorKind) => {
      need(ctx, 'failNext');
      const kinds = script().failKinds ?? ALL_KINDS;
      if (!kinds.includes(kind)) ctx.skip(`the provider cannot script ${kind}`);
    };
    const test = (title: string, fn: (ctx: TestContext) => Promise<void>) => {
      const reason = options.skip?.[title];
      if (reason !== undefined) it.skip(`${title} (skipped: ${reason})`, () => {});
      else it(title, fn);
    };

    // ---- send --------------------------------------------------------------

    test('send returns a providerMessageId and acceptedAt, and the provider receives exactly that message', async () => {
      const before = (await received())?.length ?? 0;
      const m = message(0);
      const result = await t().send(m);
      expectSendResult(result);
      const got = await received();
      if (got) {
        expect(got.length - before).toBe(1);
        const last = got[got.length - 1]!;
        expect(digits(last.to)).toBe(m.to);
        expect(last.text).toBe(m.text);
        if (last.idempotencyKey !== undefined) expect(last.idempotencyKey).toBe(m.idempotencyKey);
      }
    });

    test('two sends give distinct provider message ids', async () => {
      const a = await t().send(message(0));
      const b = await t().send(message(1));
      expectSendResult(a);
      expectSendResult(b);
      expect(a.providerMessageId).not.toBe(b.providerMessageId);
      const got = await received();
      if (got) expect(got.slice(-2).map((r) => digits(r.to))).toEqual([phones[0], phones[1]]);
    });

    for (const kind of ALL_KINDS) {
      test(`a scripted ${kind} failure surfaces as a TransportError of kind ${kind}`, async (ctx) => {
        canFail(ctx, kind);
        const scripted = (await script().failNext!(kind)) ?? {};
        const error = await transportError(t().send(message(0)));
        expect(error.kind).toBe(kind);
        expect(typeof error.message).toBe('string');
        if (kind === 'rate_limited') {
          if (scripted.retryAfterMs !== undefined) expect(error.retryAfterMs).toBe(scripted.retryAfterMs);
          else if (error.retryAfterMs !== undefined) expect(error.retryAfterMs).toBeGreaterThanOrEqual(0);
        }
        if (kind === 'account' && error.accountReason !== undefined) expect(STOP_REASONS).toContain(error.accountReason);
      });
    }

    test('a scripted failure affects only the next send', async (ctx) => {
      canFail(ctx, 'transient');
      await script().failNext!('transient');
      await transportError(t().send(message(0)));
      expectSendResult(await t().send(message(1)));
    });

    test('a message that cannot be sent fails permanent before anything leaves: campaign-wide when the broken part is shared (media), the recipient\'s own otherwise (empty text)', async () => {
      const before = (await received())?.length ?? 0;
      const badMedia = await transportError(t().send({ ...message(0), media: { url: '', type: 'image' } }));
      expect(badMedia.kind).toBe('permanent');
      expect(badMedia.scope).toBe('campaign');
      expect(badMedia.message).toContain('media');
      const empty = await transportError(t().send({ ...message(1), text: '  ' }));
      expect(empty.kind).toBe('permanent');
      expect(empty.scope).toBe('recipient');
      expect(empty.message).toContain('text');
      const got = await received();
      if (got) expect(got.length).toBe(before);
    });

    test('a send whose signal is already aborted rejects with the abort reason and sends nothing', async () => {
      const before = (await received())?.length ?? 0;
      const controller = new AbortController();
      const reason = new Error('stop now');
      controller.abort(reason);
      // The engine's send timeout aborts with an `ambiguous` TransportError as the reason: it must come back unchanged.
      expect(await rejection(t().send(message(0), { signal: controller.signal }))).toBe(reason);
      const got = await received();
      if (got) expect(got.length).toBe(before);
    });

    test('aborting a send in flight rejects with the abort reason', async (ctx) => {
      need(ctx, 'holdNext');
      await script().holdNext!();
      const controller = new AbortController();
      const reason = new TransportError('ambiguous', 'send timed out (conformance)');
      const pending = rejection(t().send(message(0), { signal: controller.signal }));
      await new Promise<void>((r) => setTimeout(r, 20));
      controller.abort(reason);
      expect(await withTimeout(pending, eventTimeoutMs, 'aborted send')).toBe(reason);
    });

    // ---- connection --------------------------------------------------------

    test('connectionState returns a valid state', async (ctx) => {
      need(ctx, 'connectionState');
      expect(STATES).toContain(await t().connectionState!());
    });

    test('a disconnect makes send fail with kind account; a reconnect restores it', async (ctx) => {
      need(ctx, 'disconnect');
      const before = (await received())?.length ?? 0;
      await script().disconnect!();
      const error = await transportError(t().send(message(0)));
      expect(error.kind).toBe('account');
      // A dropped connection can come back by itself: it is not a logout or a ban.
      expect([undefined, 'disconnected']).toContain(error.accountReason);
      if (t().connectionState) expect(await t().connectionState!()).not.toBe('open');
      const got = await received();
      if (got) expect(got.length).toBe(before);
      if (!script().reconnect) return;
      await script().reconnect!();
      if (t().connectionState) expect(await t().connectionState!()).toBe('open');
      expectSendResult(await t().send(message(1)));
    });

    // ---- numbers -----------------------------------------------------------

    test('checkNumbers returns one entry per phone', async (ctx) => {
      need(ctx, 'checkNumbers');
      const asked = phones.slice(0, 3);
      const checks = await t().checkNumbers!(asked);
      expect(checks).toHaveLength(asked.length);
      expect(checks.map((c) => c.phone).sort()).toEqual([...asked].sort());
      for (const c of checks) {
        expect(typeof c.exists).toBe('boolean');
        if (c.jid !== undefined) expect(typeof c.jid).toBe('string');
      }
      expect(await t().checkNumbers!([])).toEqual([]);
    });

    test('checkNumbers says exists: false for a number not on WhatsApp', async (ctx) => {
      need(ctx, 'checkNumbers', 'markNotOnWhatsApp');
      await script().markNotOnWhatsApp!(phones[1]!);
      const checks = await t().checkNumbers!(phones.slice(0, 3));
      const byPhone = new Map(checks.map((c) => [c.phone, c.exists]));
      expect(byPhone.get(phones[0]!)).toBe(true);
      expect(byPhone.get(phones[1]!)).toBe(false);
      expect(byPhone.get(phones[2]!)).toBe(true);
    });

    test('a send to a number not on WhatsApp fails with kind invalid_recipient', async (ctx) => {
      need(ctx, 'markNotOnWhatsApp');
      await script().markNotOnWhatsApp!(phones[2]!);
      const error = await transportError(t().send(message(2)));
      expect(error.kind).toBe('invalid_recipient');
    });

    // ---- lookup ------------------------------------------------------------

    test('lookup finds a sent message by its idempotency key', async (ctx) => {
      need(ctx, 'lookup');
      const since = Date.now() - 60_000;
      const m = message(0);
      const sent = await t().send(m);
      const found = await t().lookup!({ message: m, since });
      expect(found.status).toBe('found');
      if (found.status !== 'found') return;
      expect(found.sent.providerMessageId).toBe(sent.providerMessageId);
      expect(Number.isFinite(found.sent.acceptedAt)).toBe(true);
    });

    test('lookup of a message never sent says absent only when it can prove it, else unknown', async (ctx) => {
      need(ctx, 'lookup');
      await t().send(message(0));
      const answer = await t().lookup!({ message: message(3, { text: `${text} (never sent)` }), since: Date.now() - 60_000 });
      expect(answer.status).toBe(harness.lookupProvesAbsence ? 'absent' : 'unknown');
    });

    // ---- events ------------------------------------------------------------

    test('parseWebhook rejects garbage with a WebhookError', async (ctx) => {
      need(ctx, 'parseWebhook');
      const garbage: unknown[] = [null, undefined, 42, 'not json {', [], [1, 2, 3], { unexpected: true }];
      for (const body of garbage) {
        const headers = (await script().webhookHeaders?.(body)) ?? {};
        let error: unknown = null;
        try {
          await t().parseWebhook!(body, headers);
        } catch (e) {
          error = e;
        }
        expect(WebhookError.isInstance(error), `body ${JSON.stringify(body)} should be rejected, got ${describeValue(error)}`).toBe(true);
      }
    });

    test('parseWebhook turns a genuine webhook into events', async (ctx) => {
      need(ctx, 'parseWebhook');
      if (!script().sampleWebhook) ctx.skip('no sampleWebhook');
      const { body, headers } = await script().sampleWebhook!();
      const events = await t().parseWebhook!(body, headers);
      expect(Array.isArray(events)).toBe(true);
      for (const event of events) expectEvent(event);
    });

    test('subscribe returns an unsubscribe function and delivers events', async (ctx) => {
      need(ctx, 'subscribe');
      const events: TransportEvent[] = [];
      const unsubscribe = t().subscribe!((e) => events.push(e));
      expect(typeof unsubscribe).toBe('function');
      const emit = script().emitInbound;
      if (emit) {
        await emit(phones[3]!, 'SAIR');
        await until(() => events.some((e) => e.type === 'inbound'), eventTimeoutMs, 'inbound event');
        const inbound = events.find((e): e is Extract<TransportEvent, { type: 'inbound' }> => e.type === 'inbound')!;
        expect(digits(inbound.from)).toBe(phones[3]);
        expect(inbound.text).toBe('SAIR');
        expect(Number.isFinite(inbound.at)).toBe(true);
      }
      for (const event of events) expectEvent(event);
      unsubscribe();
      unsubscribe(); // twice is harmless
      if (emit) {
        const seen = events.length;
        await emit(phones[3]!, 'again');
        await new Promise<void>((r) => setTimeout(r, 50));
        expect(events.length).toBe(seen);
      }
    });

    test('typing resolves without throwing', async (ctx) => {
      need(ctx, 'typing');
      await expect(t().typing!(phones[0]!, 50)).resolves.toBeUndefined();
    });
  });
}

/** Capabilities that live on the script rather than the transport. */
const SCRIPT_CAPS: Record<string, true> = {
  failNext: true,
  markNotOnWhatsApp: true,
  disconnect: true,
  reconnect: true,
  received: true,
  holdNext: true,
  emitInbound: true,
};
