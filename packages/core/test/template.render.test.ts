import { describe, expect, it } from 'vitest';
import { compileTemplate, renderTemplate } from '../src/domain/template.js';

const render = (t: string, vars: Record<string, string> = {}, key = 'c1:5511987654321') => renderTemplate(compileTemplate(t), vars, key);

describe('templates', () => {
  it('fills variables and defaults', () => {
    expect(render('Olá {{name}}, {{city|sua cidade}}!', { name: 'Ana' })).toBe('Olá Ana, sua cidade!');
    expect(render('Olá {{name|cliente}}', { name: '' })).toBe('Olá cliente');
    expect(() => render('Olá {{name}}', {})).toThrow(/name/);
  });

  it('chooses spintax deterministically per recipient, and varies across recipients', () => {
    const t = '{Olá|Oi|E aí} {{name}}, {tudo bem|como vai}?';
    const a = render(t, { name: 'Ana' }, 'c1:1');
    expect(render(t, { name: 'Ana' }, 'c1:1')).toBe(a);
    const variants = new Set(Array.from({ length: 60 }, (_, i) => render(t, { name: 'Ana' }, `c1:${i}`)));
    expect(variants.size).toBe(6);
  });

  it('supports nested spintax and escaped braces', () => {
    const out = new Set(Array.from({ length: 50 }, (_, i) => render('{a|{b|c}} \\{x\\}', {}, String(i))));
    expect([...out].sort()).toEqual(['a {x}', 'b {x}', 'c {x}']);
  });

  it('rejects broken syntax with the position', () => {
    expect(() => compileTemplate('Olá {nome')).toThrow(/unclosed/);
    expect(() => compileTemplate('Olá {{nome')).toThrow(/position 4/);
    expect(() => compileTemplate('Olá nome}')).toThrow(/unexpected/);
    expect(() => compileTemplate('{{ 1abc }}')).toThrow(/invalid variable/);
  });
});
