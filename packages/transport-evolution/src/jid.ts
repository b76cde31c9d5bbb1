/** WhatsApp addresses (JIDs) as Evolution API returns them. */

const USER_DOMAINS = ['s.whatsapp.net', 'c.us'];

/** `5511987654321@s.whatsapp.net` (or `…:12@s.whatsapp.net`, a device address) -> `5511987654321`; null for groups, LIDs, broadcasts. */
export function phoneFromJid(jid: string | null | undefined): string | null {
  if (typeof jid !== 'string') return null;
  const at = jid.indexOf('@');
  if (at <= 0) return null;
  const domain = jid.slice(at + 1).toLowerCase();
  if (!USER_DOMAINS.includes(domain)) return null;
  const user = jid.slice(0, at).split(':')[0]!;
  return /^\d{6,20}$/.test(user) ? user : null;
}

export function jidFromPhone(phone: string): string {
  return `${phone}@s.whatsapp.net`;
}

/** Lower-cased, device suffix removed: the form Evolution stores as `key.remoteJid` of a sent message. */
export function normalizeJid(jid: string): string {
  const at = jid.indexOf('@');
  if (at <= 0) return jid.toLowerCase();
  return `${jid.slice(0, at).split(':')[0]}@${jid.slice(at + 1)}`.toLowerCase();
}

/**
 * The numbers Evolution may have turned `phone` into before sending. Its number check tries both
 * forms of Brazil's 9th digit and of the Mexican (`1`) and Argentine (`9`) mobile prefixes
 * (`whatsappNumber()` in Evolution's Baileys service), so a message to `5511987654321` can be stored
 * under `551187654321@s.whatsapp.net`.
 */
export function numberVariants(phone: string): string[] {
  const out = new Set<string>([phone]);
  const toggle = (country: string, insertAt: number, digit: string) => {
    if (!phone.startsWith(country)) return;
    if (phone.length === 13 && phone[insertAt] === digit) out.add(phone.slice(0, insertAt) + phone.slice(insertAt + 1));
    if (phone.length === 12) out.add(phone.slice(0, insertAt) + digit + phone.slice(insertAt));
  };
  toggle('55', 4, '9');
  toggle('52', 2, '1');
  toggle('54', 2, '9');
  return [...out];
}
