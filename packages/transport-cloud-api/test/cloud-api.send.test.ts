import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '@disparo/core/testing';
import { cloudApiTemplateText } from '@disparo/transport-cloud-api';
import { FakeGraph } from './fake-graph.js';
import { fixture } from './fixtures.js';
import { message, transportError, transportFor } from './helpers.js';

let fake: FakeGraph;
beforeEach(async () => {
  fake = await FakeGraph.start();
});
afterEach(async () => {
  await fake.close();
});

describe('send: free-form text', () => {
  it('posts the fixture body to /{version}/{phone-number-id}/messages with the Bearer token; returns the wamid and wa_id', async () => {
    const request = fixture('cloudapi.sendText.request.json');
    const clock = new VirtualClock(1_748_769_300_000);
    const t = transportFor(fake, { clock });
    const result = await t.send(message({ to: request.to, text: request.text.body, idempotencyKey: request.biz_opaque_callback_data }));

    const [call] = fake.requests;
    expect(call!.method).toBe('POST');
    expect(call!.path).toBe(`/v23.0/${fake.phoneNumberId}/messages`);
    expect(call!.headers.authorization).toBe(`Bearer ${fake.accessToken}`);
    expect(call!.headers['content-type']).toBe('application/json');
    expect(call!.body).toEqual(request);

    const accepted = fake.accepted[0]!;
    expect(result).toEqual({ providerMessageId: accepted.id, acceptedAt: 1_748_769_300_000, remoteJid: '5511999990001' });
    expect(result.providerMessageId).toMatch(/^wamid\./);
  });

  it('carries the idempotency key as biz_opaque_callback_data on every send, and previews links only when asked', async () => {
    await transportFor(fake, { previewUrl: true }).send(message({ text: 'see https://example.com', idempotencyKey: 'c9:5511999990001' }));
    expect(fake.accepted[0]!.callbackData).toBe('c9:5511999990001');
    expect(fake.accepted[0]!.body.text).toEqual({ preview_url: true, body: 'see https://example.com' });
  });

  it('returns the wa_id Meta reports, which may differ from the number sent to', async () => {
    fake.waIds.set('5511987654321', '551187654321');
    const result = await transportFor(fake).send(message({ to: '5511987654321' }));
    expect(result.remoteJid).toBe('551187654321');
    expect(fake.accepted[0]!.to).toBe('5511987654321');
  });

  it('refuses a key longer than 512 characters before calling Meta (it could not correlate)', async () => {
    const error = await transportError(transportFor(fake).send(message({ idempotencyKey: 'k'.repeat(513) })));
    expect(error).toMatchObject({ kind: 'permanent', scope: 'campaign' });
    expect(error.message).toContain('biz_opaque_callback_data');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a media URL Meta could not fetch (campaign-wide) and a malformed number (this recipient), before calling Meta', async () => {
    const t = transportFor(fake);
    expect(await transportError(t.send(message({ media: { url: 'ftp://cdn.example.com/promo.jpg', type: 'image' } })))).toMatchObject({ kind: 'permanent', scope: 'campaign' });
    expect(await transportError(t.send(message({ to: '55 11 9999' })))).toMatchObject({ kind: 'permanent', scope: 'recipient' });
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses an empty text without media or template for this recipient (their rendered text is empty), sending nothing', async () => {
    const error = await transportError(transportFor(fake).send(message({ text: '   ' })));
    expect(error).toMatchObject({ kind: 'permanent', scope: 'recipient' });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('send: media by link', () => {
  it.each([
    ['image', { link: 'https://cdn.example.com/promo.jpg', caption: 'Promoção de inverno' }],
    ['video', { link: 'https://cdn.example.com/promo.mp4', caption: 'Promoção de inverno' }],
    ['document', { link: 'https://cdn.example.com/files/catalogo%202025.pdf', caption: 'Promoção de inverno', filename: 'catalogo 2025.pdf' }],
  ] as const)('%s: the text becomes the caption', async (type, expected) => {
    const result = await transportFor(fake).send(message({ text: 'Promoção de inverno', media: { url: expected.link, type } }));
    const body = fake.accepted[0]!.body;
    expect(body).toMatchObject({ messaging_product: 'whatsapp', recipient_type: 'individual', to: '5511999990001', type });
    expect(body[type]).toEqual(expected);
    expect(body.biz_opaque_callback_data).toMatch(/^cmp_42:rcpt_/);
    expect(result.providerMessageId).toBe(fake.accepted[0]!.id);
  });

  it('document: a given fileName wins over the URL', async () => {
    await transportFor(fake).send(message({ text: '', media: { url: 'https://cdn.example.com/x.pdf', type: 'document', fileName: 'Boleto.pdf' } }));
    expect(fake.accepted[0]!.body.document).toEqual({ link: 'https://cdn.example.com/x.pdf', filename: 'Boleto.pdf' });
  });

  it('audio goes without caption; audio with a text is refused for the whole campaign', async () => {
    await transportFor(fake).send(message({ text: '', media: { url: 'https://cdn.example.com/a.ogg', type: 'audio' } }));
    expect(fake.accepted[0]!.body).toMatchObject({ type: 'audio', audio: { link: 'https://cdn.example.com/a.ogg' } });
    const error = await transportError(transportFor(fake).send(message({ text: 'ouça', media: { url: 'https://cdn.example.com/a.ogg', type: 'audio' } })));
    expect(error).toMatchObject({ kind: 'permanent', scope: 'campaign' });
    expect(fake.accepted).toHaveLength(1);
  });
});

describe('send: templates', () => {
  const request = fixture('cloudapi.sendTemplate.request.json');

  it('a template directive in the text is sent as the fixture template body', async () => {
    const text = cloudApiTemplateText({ name: 'order_shipped', language: 'pt_BR', body: ['Maria', '#1234'] });
    const result = await transportFor(fake).send(message({ to: request.to, text, idempotencyKey: request.biz_opaque_callback_data }));
    expect(fake.requests[0]!.body).toEqual(request);
    expect(result.providerMessageId).toBe(fake.accepted[0]!.id);
  });

  it('message.template (the field a campaign option will fill) is sent the same way', async () => {
    await transportFor(fake).send(message({ to: request.to, text: '', idempotencyKey: request.biz_opaque_callback_data, template: { name: 'order_shipped', language: 'pt_BR', body: ['Maria', '#1234'] } }));
    expect(fake.requests[0]!.body).toEqual(request);
  });

  it('header, named parameters and buttons map onto components; campaign media becomes the header', async () => {
    fake.templates.set('promo_named', { language: 'en_US', body: ['first_name', 'coupon'] });
    const text = [
      '#template promo_named en_US',
      'body.first_name: Ana',
      'body.coupon: SAVE10',
      'button.0.url: summer/ana',
      'button.1.quick_reply: STOP_PROMOS',
      'button.2.copy_code: SAVE10',
    ].join('\n');
    await transportFor(fake).send(message({ text, media: { url: 'https://cdn.example.com/banner.png', type: 'image' } }));
    expect(fake.accepted[0]!.body.template).toEqual({
      name: 'promo_named',
      language: { code: 'en_US' },
      components: [
        { type: 'header', parameters: [{ type: 'image', image: { link: 'https://cdn.example.com/banner.png' } }] },
        { type: 'body', parameters: [{ type: 'text', parameter_name: 'first_name', text: 'Ana' }, { type: 'text', parameter_name: 'coupon', text: 'SAVE10' }] },
        { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'summer/ana' }] },
        { type: 'button', sub_type: 'quick_reply', index: '1', parameters: [{ type: 'payload', payload: 'STOP_PROMOS' }] },
        { type: 'button', sub_type: 'copy_code', index: '2', parameters: [{ type: 'coupon_code', coupon_code: 'SAVE10' }] },
      ],
    });
  });

  it('a recipient value with a line break fails that recipient only, before calling Meta', async () => {
    const text = '#template order_shipped pt_BR\nbody: Maria\nda Silva\nbody: #1234';
    const error = await transportError(transportFor(fake).send(message({ text })));
    expect(error).toMatchObject({ kind: 'permanent', scope: 'recipient' });
    expect(error.message).toContain('line break');
    expect(fake.requests).toHaveLength(0);
  });

  it('an unknown directive key fails the campaign, before calling Meta', async () => {
    const error = await transportError(transportFor(fake).send(message({ text: '#template order_shipped pt_BR\nbodyy: Maria' })));
    expect(error).toMatchObject({ kind: 'permanent', scope: 'campaign' });
    expect(fake.requests).toHaveLength(0);
  });

  it('with templateDirective off, the directive is sent as plain text', async () => {
    const text = '#template order_shipped pt_BR\nbody: Maria';
    await transportFor(fake, { templateDirective: false }).send(message({ text }));
    expect(fake.accepted[0]!.body).toMatchObject({ type: 'text', text: { body: text } });
  });
});
