/** WhatsApp addresses (JIDs) for phone users. */

const USER_DOMAINS = ['s.whatsapp.net', 'c.us'];

/** `5511987654321@s.whatsapp.net` (or a device address `…:12@s.whatsapp.net`) -> `5511987654321`; null for groups, LIDs, broadcasts. */
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

/** Lower-cased, device suffix removed (`jidNormalizedUser` for phone users). */
export function normalizeJid(jid: string): string {
  const at = jid.indexOf('@');
  if (at <= 0) return jid.toLowerCase();
  const domain = jid.slice(at + 1).toLowerCase();
  return `${jid.slice(0, at).split(':')[0]}@${domain === 'c.us' ? 's.whatsapp.net' : domain}`;
}

/**
 * Forms of `phone` WhatsApp may know it by: Brazilian mobiles with and without the 9th digit
 * (`55 DD 9XXXXXXXX` / `55 DD XXXXXXXX`). WhatsApp's number check answers with the canonical one.
 */
export function numberVariants(phone: string): string[] {
  const out = [phone];
  if (phone.startsWith('55')) {
    if (phone.length === 13 && phone[4] === '9') out.push(phone.slice(0, 4) + phone.slice(5));
    if (phone.length === 12 && /[6-9]/.test(phone[4]!)) out.push(`${phone.slice(0, 4)}9${phone.slice(4)}`);
  }
  return out;
}
