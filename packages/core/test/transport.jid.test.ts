import { describe, expect, it } from 'vitest';
import { jidFromPhone, normalizeJid, numberVariants, phoneFromJid } from '@disparo/core/transport';

describe('WhatsApp addresses shared by the transports', () => {
  it.each([
    ['5511987654321', ['5511987654321', '551187654321']], // Brazil: mobile with its ninth digit
    ['551187654321', ['551187654321', '5511987654321']], // and without
    ['5215512345678', ['5215512345678', '525512345678']], // Mexico: with the 1 after the country code
    ['525512345678', ['525512345678', '5215512345678']], // and without
    ['5491123456789', ['5491123456789', '541123456789']], // Argentina: with the 9 after the country code
    ['541123456789', ['541123456789', '5491123456789']], // and without
    ['14155552671', ['14155552671']], // elsewhere: the number alone
  ])('numberVariants(%s)', (phone, variants) => {
    expect(numberVariants(phone)).toEqual(variants);
  });

  it('reads and writes the JIDs of phone users, and nothing else', () => {
    expect(jidFromPhone('5511987654321')).toBe('5511987654321@s.whatsapp.net');
    expect(phoneFromJid('5511987654321:12@s.whatsapp.net')).toBe('5511987654321');
    expect(phoneFromJid('5511987654321@c.us')).toBe('5511987654321');
    for (const other of ['123@g.us', '123@lid', 'status@broadcast', null, undefined, '']) expect(phoneFromJid(other)).toBeNull();
    expect(normalizeJid('5511987654321:3@C.US')).toBe('5511987654321@s.whatsapp.net');
  });
});
