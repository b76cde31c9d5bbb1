/** WhatsApp addresses (JIDs) of phone users, shared by every transport. */

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

/** Lower-cased, device suffix removed, `c.us` as `s.whatsapp.net`: the form providers store a sent message's `remoteJid` in. */
export function normalizeJid(jid: string): string {
  const at = jid.indexOf('@');
  if (at <= 0) return jid.toLowerCase();
  const domain = jid.slice(at + 1).toLowerCase();
  return `${jid.slice(0, at).split(':')[0]!.toLowerCase()}@${domain === 'c.us' ? 's.whatsapp.net' : domain}`;
}

/**
 * Forms a phone may be known by on WhatsApp, `phone` first. WhatsApp's number check (and Evolution's
 * `whatsappNumber()`) tries both forms of three national quirks, so a message to one form can be
 * stored under the other:
 * - Brazil (55): mobiles with and without the ninth digit (`55 DD 9XXXXXXXX` / `55 DD XXXXXXXX`);
 * - Mexico (52): mobiles with and without the `1` after the country code (`521…` / `52…`);
 * - Argentina (54): mobiles with and without the `9` after the country code (`549…` / `54…`).
 */
export function numberVariants(phone: string): string[] {
  const out = new Set<string>([phone]);
  const toggle = (country: string, insertAt: number, digit: string, longLength: number) => {
    if (!phone.startsWith(country)) return;
    if (phone.length === longLength && phone[insertAt] === digit) out.add(phone.slice(0, insertAt) + phone.slice(insertAt + 1));
    if (phone.length === longLength - 1) out.add(phone.slice(0, insertAt) + digit + phone.slice(insertAt));
  };
  toggle('55', 4, '9', 13);
  toggle('52', 2, '1', 13);
  toggle('54', 2, '9', 13);
  return [...out];
}
