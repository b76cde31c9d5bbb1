import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * Normalise a phone to E.164 digits without '+' (e.g. `5511987654321`), or null when invalid.
 * Numbers without a country code take `defaultCountry` (BR by default); `+`, spaces, dashes and
 * parentheses are ignored. Brazilian mobiles written without the 9th digit stay as written: the
 * transport's number check resolves the canonical WhatsApp address.
 */
export function normalizePhone(raw: string | number, defaultCountry: CountryCode = 'BR'): string | null {
  let text = typeof raw === 'number' ? String(raw) : raw.trim();
  if (!text) return null;
  if (text.startsWith('00')) text = `+${text.slice(2)}`;
  const digits = text.replace(/[^\d]/g, '');
  if (digits.length < 8 || digits.length > 15) return null;
  const parsed = text.startsWith('+')
    ? parsePhoneNumberFromString(`+${digits}`)
    : // Digits that already carry the default country's code (e.g. 5511...) are read as international.
      parseWithCountry(digits, defaultCountry);
  if (!parsed || !parsed.isValid()) return null;
  return parsed.number.slice(1);
}

function parseWithCountry(digits: string, country: CountryCode) {
  const national = parsePhoneNumberFromString(digits, country);
  if (national?.isValid()) return national;
  const international = parsePhoneNumberFromString(`+${digits}`);
  return international?.isValid() ? international : national;
}
