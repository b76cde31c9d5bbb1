import { describe, expect, it } from 'vitest';
import { normalizePhone, seededRandom } from '@disparo/core';

describe('phone normalisation', () => {
  it.each([
    ['(11) 98765-4321', '5511987654321'],
    ['11 98765 4321', '5511987654321'],
    ['+55 11 98765-4321', '5511987654321'],
    ['5511987654321', '5511987654321'],
    ['005511987654321', '5511987654321'],
    [5521998765432, '5521998765432'],
    ['(11) 3456-7890', '551134567890'], // landline
    ['+1 (415) 555-2671', '14155552671'],
    ['+351 912 345 678', '351912345678'],
  ])('%s -> %s', (raw, expected) => {
    expect(normalizePhone(raw)).toBe(expected);
  });

  it.each(['', '123', 'abc', '+55 00 1234', '9'.repeat(20), '(20) 98765-4321'])('rejects %j', (raw) => {
    expect(normalizePhone(raw)).toBeNull();
  });

  it('uses the default country for national numbers', () => {
    expect(normalizePhone('912 345 678', 'PT')).toBe('351912345678');
  });
});

describe('phone fast path', () => {
  it('agrees with libphonenumber (full metadata) on Brazilian numbers', async () => {
    const { parsePhoneNumberFromString } = await import('libphonenumber-js/max');
    const random = seededRandom(42);
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      const ddd = 10 + Math.floor(random() * 90);
      const len = random() < 0.6 ? 9 : 8;
      const rest = Array.from({ length: len }, () => Math.floor(random() * 10)).join('');
      const national = `${ddd}${rest}`;
      const reference = parsePhoneNumberFromString(`+55${national}`);
      const expected = reference?.isValid() ? reference.number.slice(1) : null;
      expect(normalizePhone(national), national).toBe(expected);
      expect(normalizePhone(`+55 ${national}`), `+55${national}`).toBe(expected);
      checked++;
    }
    expect(checked).toBe(20_000);
  });
});
