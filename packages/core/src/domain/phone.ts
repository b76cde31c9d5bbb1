import { getCountryCallingCode, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

// Brazilian area codes (DDD) in service. With the mobile (9 + 8 digits) and landline ([2-5] + 7
// digits) shapes below, this accepts exactly what libphonenumber's full metadata accepts for
// those shapes, ~20x faster: imports of a million recipients are mostly Brazilian mobiles.
const BR_DDD = new Set([
  11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66,
  67, 68, 69, 71, 73, 74, 75, 77, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
]);

/**
 * A Brazilian national number (DDD + subscriber) in canonical form, or null when it has neither
 * shape: mobiles are 9 + 8 digits; landlines [2-5] + 7 digits. Eight digits starting 6-9 are a
 * mobile written without the ninth digit (numbering before 2016, still in many contact lists): it
 * gets its 9, and the transports' number check settles the address WhatsApp knows it by.
 */
function brazilNational(national: string): string | null {
  if (!BR_DDD.has(Number(national.slice(0, 2)))) return null;
  const rest = national.slice(2);
  const first = rest.charCodeAt(0);
  if (rest.length === 9) return first === 57 ? national : null; // '9'
  if (rest.length !== 8) return null;
  if (first >= 50 && first <= 53) return national; // '2'..'5': landline
  if (first >= 54 && first <= 57) return `${national.slice(0, 2)}9${rest}`; // '6'..'9': mobile without its 9
  return null;
}

/**
 * Normalise a phone to E.164 digits without '+' (e.g. `5511987654321`), or null when invalid.
 * Numbers without a country code take `defaultCountry` (BR by default); `+`, spaces, dashes and
 * parentheses are ignored. Brazilian mobiles written without the ninth digit (`11 9999-0001`) get
 * it (`5511999990001`), as Brazilian numbering does; the transports' number check then resolves the
 * address WhatsApp knows the contact by.
 */
export function normalizePhone(raw: string | number, defaultCountry: CountryCode = 'BR'): string | null {
  let text = typeof raw === 'number' ? String(raw) : raw.trim();
  if (!text) return null;
  if (text.startsWith('00')) text = `+${text.slice(2)}`;
  if (/[^\d\s()+.\-]/.test(text)) return null;
  const digits = text.replace(/\D/g, '');
  if (digits.length < 8 || digits.length > 15) return null;
  const international = text.startsWith('+');
  // Brazilian numbers in their common shapes (and mobiles written without the ninth digit).
  if (!international && defaultCountry === 'BR' && (digits.length === 10 || digits.length === 11)) {
    const national = brazilNational(digits);
    if (national !== null) return `55${national}`;
  }
  if ((international || defaultCountry === 'BR') && digits.startsWith('55') && (digits.length === 12 || digits.length === 13)) {
    const national = brazilNational(digits.slice(2));
    if (national !== null) return `55${national}`;
  }

  const parsed = international ? parsePhoneNumberFromString(`+${digits}`) : parseWithCountry(digits, defaultCountry);
  if (!parsed || !parsed.isValid()) return null;
  return parsed.number.slice(1);
}

function parseWithCountry(digits: string, country: CountryCode) {
  const national = parsePhoneNumberFromString(digits, country);
  if (national?.isValid()) return national;
  // Digits that already carry the default country's code (e.g. 5511... for BR) are read as
  // international; other digits are never reinterpreted as some other country's number.
  if (!digits.startsWith(getCountryCallingCode(country))) return national;
  const international = parsePhoneNumberFromString(`+${digits}`);
  return international?.isValid() ? international : national;
}
