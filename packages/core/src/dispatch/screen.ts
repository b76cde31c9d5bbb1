import type { EngineContext } from '../context.js';
import type { AccountRecord, Campaign, Recipient, SkipReason } from '../domain/types.js';
import type { PendingOutcomes } from './recorder.js';

/** Six months: how far back a sticky sender looks for the account that last wrote to a contact. */
const STICKY_LOOKBACK_MS = 180 * 86_400_000;

/**
 * Before spending sends: drop numbers not on WhatsApp (optional pre-check), contacts over their
 * cross-campaign frequency cap, and pin contacts to the account that last wrote to them (sticky).
 * The skipped rows' outcomes are added to `pending`; the caller records them.
 */
export async function screen(
  ctx: EngineContext,
  campaign: Campaign,
  claimed: Recipient[],
  local: AccountRecord[],
  pending: PendingOutcomes,
): Promise<{ sendable: Recipient[]; sticky: Map<string, string> }> {
  const { store, clock } = ctx;
  const settings = campaign.settings;
  const sticky = new Map<string, string>();
  let rows = claimed;
  const skip = (r: Recipient, reason: SkipReason, detail: string) =>
    pending.add(
      { recipientId: r.id, campaignId: campaign.id, status: 'skipped', skipReason: reason, error: detail, attempts: r.attempts, at: clock.now(), accountEffect: 'none' },
      () => ctx.emit('message:skipped', { campaignId: campaign.id, recipientId: r.id, phone: r.phone, reason, detail }),
    );

  if (settings.precheckNumbers) {
    const checker = local.map((a) => ctx.accounts.get(a.id)!.transport).find((t) => t.checkNumbers);
    const unchecked = rows.filter((r) => r.text === null); // a resumed row was checked before its first send
    if (checker && unchecked.length > 0) {
      try {
        const checks = await checker.checkNumbers!(unchecked.map((r) => r.phone));
        const missing = new Set(checks.filter((c) => !c.exists).map((c) => c.phone));
        rows = rows.filter((r) => {
          if (!missing.has(r.phone)) return true;
          skip(r, 'not_on_whatsapp', 'number is not on WhatsApp (pre-check)');
          return false;
        });
      } catch (error) {
        // The check is an optimisation: when it fails, sending still finds out.
        ctx.fail(`number pre-check for campaign ${campaign.id}`, error);
      }
    }
  }

  if ((settings.contactCap || settings.stickySender) && rows.length > 0) {
    if (!store.contactHistory) {
      ctx.fail(`campaign ${campaign.id}`, new Error(`the ${store.name} store has no contactHistory(): sticky senders and contact caps are off`));
      return { sendable: rows, sticky };
    }
    const now = clock.now();
    const since = settings.stickySender ? now - STICKY_LOOKBACK_MS : now - settings.contactCap!.periodMs;
    const history = await store.contactHistory(
      rows.map((r) => r.phone),
      since,
    );
    const cap = settings.contactCap;
    if (cap) {
      const capSince = now - cap.periodMs;
      const counts = new Map<string, number>();
      for (const h of history) if (h.sentAt >= capSince) counts.set(h.phone, (counts.get(h.phone) ?? 0) + 1);
      rows = rows.filter((r) => {
        const n = counts.get(r.phone) ?? 0;
        if (n < cap.max) return true;
        skip(r, 'frequency_capped', `${n} message(s) to this contact in the last ${Math.round(cap.periodMs / 3_600_000)} h`);
        return false;
      });
    }
    if (settings.stickySender) {
      for (const h of history) {
        // Soft pin: only to an account usable here now, so a lost account never strands its contacts.
        if (!sticky.has(h.phone) && h.accountId && local.some((a) => a.id === h.accountId)) sticky.set(h.phone, h.accountId);
      }
    }
  }
  return { sendable: rows, sticky };
}
