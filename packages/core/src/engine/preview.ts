import type { CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { EngineContext } from '../context.js';
import { ConflictError, ValidationError, validate } from '../errors.js';
import { normalizePhone } from '../domain/phone.js';
import { compileTemplate, pickTemplate, renderTemplate } from '../domain/template.js';
import { isUsable } from '../rules/accounts.js';
import { getCampaign } from './campaigns.js';
import { recipientInputSchema } from './schemas.js';

export interface TestSendResult {
  phone: string;
  text: string;
  providerMessageId?: string;
  error?: string;
}

/**
 * Send the campaign's message to a few given numbers (a preview): rendered with the given vars,
 * through the first usable account registered here, outside the campaign's audience and counters.
 */
export async function testSend(
  ctx: EngineContext,
  campaignId: string,
  to: Array<{ phone: string | number; vars?: Record<string, string | number | boolean | null> }>,
): Promise<TestSendResult[]> {
  const campaign = await getCampaign(ctx, campaignId);
  const list = validate(z.array(recipientInputSchema).min(1).max(20), to, 'test recipients', 'to');
  const now = ctx.clock.now();
  const records = await ctx.store.listAccounts(campaign.accountIds);
  const account = records
    .filter((a) => isUsable(a, now))
    .map((a) => ctx.accounts.get(a.id))
    .find((a) => a !== undefined);
  if (!account) throw new ConflictError(`No usable account of campaign ${campaignId} is registered on this engine; add one with addAccount() or reconnect it.`);
  const results: TestSendResult[] = [];
  for (const [i, item] of list.entries()) {
    const phone = normalizePhone(item.phone, ctx.options.defaultCountry as CountryCode);
    if (phone === null) throw new ValidationError(`Invalid test recipients: to.${i}.phone: "${item.phone}" is not a valid phone number`, [{ path: `to.${i}.phone`, message: 'not a valid phone number' }]);
    const seed = `${campaignId}:${phone}`;
    let text: string;
    try {
      text = renderTemplate(compileTemplate(pickTemplate(campaign.templates, seed)), item.vars, seed);
    } catch (error) {
      results.push({ phone, text: '', error: error instanceof Error ? error.message : String(error) });
      continue;
    }
    try {
      const sent = await account.transport.send({ to: phone, text, media: campaign.media, idempotencyKey: `test:${seed}:${now}` });
      results.push({ phone, text, providerMessageId: sent.providerMessageId });
    } catch (error) {
      results.push({ phone, text, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return results;
}
