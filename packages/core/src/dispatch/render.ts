import type { EngineContext } from '../context.js';
import { compileTemplate, MAX_TEXT_LENGTH, MissingVariableError, pickTemplate, renderTemplate, type CompiledTemplate } from '../domain/template.js';
import type { Campaign, Recipient } from '../domain/types.js';
import type { PendingOutcomes } from './recorder.js';
import { idempotencyKey } from './send.js';

/** Compiled templates by source, for one worker. */
export type TemplateCache = Map<string, CompiledTemplate>;

/**
 * The text to send to `recipient`: rendered once (deterministically, so a resumed send is the one
 * first planned) and then kept with the row. Null when the recipient ends here: skipped for a
 * template error, or failed when its attempts are used up; the outcome is added to `pending`.
 */
export function textFor(ctx: EngineContext, cache: TemplateCache, campaign: Campaign, recipient: Recipient, pending: PendingOutcomes): string | null {
  const key = idempotencyKey(campaign.id, recipient.phone);
  const ref = { campaignId: campaign.id, recipientId: recipient.id, phone: recipient.phone };
  const at = ctx.clock.now();
  let text = recipient.text;
  if (text === null) {
    try {
      const source = pickTemplate(campaign.templates, key);
      let template = cache.get(source);
      if (!template) cache.set(source, (template = compileTemplate(source)));
      text = renderTemplate(template, recipient.vars, key);
      if (text.length > MAX_TEXT_LENGTH) throw new RangeError(`rendered text has ${text.length} characters, over WhatsApp's ${MAX_TEXT_LENGTH}`);
      if (text.length === 0) throw new RangeError('rendered text is empty');
    } catch (error) {
      const detail = error instanceof MissingVariableError || error instanceof RangeError ? error.message : String(error);
      pending.add(
        { recipientId: recipient.id, campaignId: campaign.id, status: 'skipped', skipReason: 'template_error', error: detail, attempts: recipient.attempts, at, accountEffect: 'none' },
        () => ctx.emit('message:skipped', { ...ref, reason: 'template_error', detail }),
      );
      return null;
    }
  }
  if (recipient.attempts >= campaign.settings.maxAttempts) {
    pending.add({ recipientId: recipient.id, campaignId: campaign.id, status: 'failed', error: 'max attempts reached', attempts: recipient.attempts, at, accountEffect: 'none' }, () =>
      ctx.emit('message:failed', { ...ref, accountId: null, error: 'max attempts reached', kind: 'max_attempts' }),
    );
    return null;
  }
  return text;
}
