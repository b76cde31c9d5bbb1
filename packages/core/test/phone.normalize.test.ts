import { describe, expect, it } from 'vitest';
import { normalizePhone } from '@disparo/core';

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
