import { describe, expect, it } from 'vitest';
import { normalizePhone } from '@disparo/core';
import { seededRandom } from '@disparo/core/testing';

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

  it.each([
    ['11 9999-0001', '5511999990001'],
    ['(21) 8765-4321', '5521987654321'],
    ['551199990001', '5511999990001'],
    ['+55 11 6543-2109', '5511965432109'],
  ])('a Brazilian mobile written without its ninth digit gets it: %s -> %s', (raw, expected) => {
    expect(normalizePhone(raw)).toBe(expected);
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
      // Eight digits starting 6-9 are a mobile written without its ninth digit: libphonenumber judges the number with it.
      const canonical = len === 8 && /[6-9]/.test(rest[0]!) ? `${ddd}9${rest}` : national;
      const reference = parsePhoneNumberFromString(`+55${canonical}`);
      const expected = reference?.isValid() ? reference.number.slice(1) : null;
      expect(normalizePhone(national), national).toBe(expected);
      expect(normalizePhone(`+55 ${national}`), `+55${national}`).toBe(expected);
      checked++;
    }
    expect(checked).toBe(20_000);
  });
});
