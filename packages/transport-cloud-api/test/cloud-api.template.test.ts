import { describe, expect, it } from 'vitest';
import { cloudApiTemplateText, parseTemplateText, templatePayload, TemplateTextError, type CloudApiTemplate } from '@disparo/transport-cloud-api';
import { compileTemplate, renderTemplate } from '../../core/src/domain/template.js';
import { fixture } from './fixtures.js';

describe('template directive', () => {
  const full: CloudApiTemplate = {
    name: 'promo_2025',
    language: 'pt_BR',
    header: { type: 'text', text: 'Olá {{name}}' },
    body: ['{{name|cliente}}', '{Oi|Olá}, {{city}}'],
    buttons: [{ index: 0, type: 'url', value: 'c/{{coupon}}' }],
  };

  it('round-trips through cloudApiTemplateText and parseTemplateText', () => {
    const text = cloudApiTemplateText(full);
    expect(text).toBe('#template promo_2025 pt_BR\nheader: Olá {{name}}\nbody: {{name|cliente}}\nbody: {Oi|Olá}, {{city}}\nbutton.0.url: c/{{coupon}}');
    expect(parseTemplateText(text)).toEqual(full);
  });

  it("survives Disparo's own rendering: variables, defaults and spintax fill the parameters per recipient", () => {
    const compiled = compileTemplate(cloudApiTemplateText(full));
    const rendered = renderTemplate(compiled, { name: 'Maria', city: 'Recife', coupon: 'X1' }, 'c1:5511999990001');
    const parsed = parseTemplateText(rendered)!;
    expect(parsed.header).toEqual({ type: 'text', text: 'Olá Maria' });
    expect(parsed.body).toEqual(['Maria', expect.stringMatching(/^(Oi|Olá), Recife$/)]);
    expect(parsed.buttons).toEqual([{ index: 0, type: 'url', value: 'c/X1' }]);
  });

  it('gives the fixture template object', () => {
    const request = fixture('cloudapi.sendTemplate.request.json');
    expect(templatePayload(parseTemplateText('#template order_shipped pt_BR\nbody: Maria\nbody: #1234')!)).toEqual(request.template);
  });

  it('is not a directive unless the text starts with "#template "', () => {
    expect(parseTemplateText('Olá Maria')).toBeNull();
    expect(parseTemplateText('#templates are cool')).toBeNull();
    expect(parseTemplateText(' #template x pt_BR')).toBeNull();
  });

  it.each([
    ['#template Order pt_BR', 'campaign'],
    ['#template order_shipped', 'campaign'],
    ['#template order_shipped portuguese', 'campaign'],
    ['#template a pt_BR\nfooter: x', 'campaign'],
    ['#template a pt_BR\nbody: x\nbody.name: y', 'campaign'],
    ['#template a pt_BR\nbody: Maria\nSilva', 'recipient'],
    ['#template a pt_BR\nbody:', 'recipient'],
  ] as const)('%j is refused with scope %s', (text, scope) => {
    try {
      parseTemplateText(text);
      throw new Error('expected a TemplateTextError');
    } catch (error) {
      expect(error).toBeInstanceOf(TemplateTextError);
      expect((error as TemplateTextError).scope).toBe(scope);
    }
  });

  it('cloudApiTemplateText validates its input with a ValidationError naming the field', () => {
    expect(() => cloudApiTemplateText({ name: 'Bad Name', language: 'pt_BR' })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'name' }));
    expect(() => cloudApiTemplateText({ name: 'ok', language: 'pt_BR', buttons: [{ index: 10, type: 'url', value: 'x' }] })).toThrow(expect.objectContaining({ field: 'buttons.0.index' }));
  });
});
