import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { EngineContext } from '../context.js';
import { ConflictError, NotFoundError, ValidationError, validate } from '../errors.js';
import { assertTransition } from '../domain/campaign-status.js';
import { compileTemplate, pickTemplate } from '../domain/template.js';
import type { Campaign, CampaignStatus, PauseReason } from '../domain/types.js';
import { createCampaignSchema, idSchema, toSettings, type CreateCampaignInput } from './schemas.js';

/** Campaign administration: create, read, and the status changes a person asks for. Works from any process. */

export async function createCampaign(ctx: EngineContext, input: CreateCampaignInput): Promise<Campaign> {
  const v = validate(createCampaignSchema, input, 'campaign');
  const now = ctx.clock.now();
  if (v.scheduledAt != null && !Number.isFinite(v.scheduledAt)) {
    throw new ValidationError('Invalid campaign: scheduledAt: not a valid date', [{ path: 'scheduledAt', message: 'not a valid date' }]);
  }
  if (!v.allowUnknownAccounts) await assertKnownAccounts(ctx, v.accountIds);
  const id = v.id ?? randomUUID();
  if (v.id && (await ctx.store.getCampaign(v.id))) throw new ConflictError(`A campaign with id "${v.id}" already exists. Pick another id or omit it.`);
  const campaign = await ctx.store.createCampaign({
    id,
    name: v.name,
    templates: v.templates ?? [v.template!],
    media: v.media ?? null,
    accountIds: v.accountIds,
    settings: toSettings(v),
    status: 'draft',
    scheduledAt: v.scheduledAt ?? null,
    metadata: v.metadata,
    now,
  });
  ctx.emit('campaign:created', { campaign });
  return campaign;
}

/** An account id must be registered on this engine, or stored by some engine (a worker registered it). */
async function assertKnownAccounts(ctx: EngineContext, ids: string[]): Promise<void> {
  const stored = new Set((await ctx.store.listAccounts(ids)).map((a) => a.id));
  const issues = ids.flatMap((id, i) => (ctx.accounts.has(id) || stored.has(id) ? [] : [{ path: `accountIds.${i}`, message: `unknown account "${id}"` }]));
  if (issues.length === 0) return;
  throw new ValidationError(
    `Invalid campaign: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Register it with createEngine({ accounts }) or engine.addAccount() first, or pass allowUnknownAccounts: true when a worker elsewhere will register it.`,
    issues,
  );
}

export async function getCampaign(ctx: EngineContext, id: string): Promise<Campaign> {
  validate(idSchema, id, 'campaign id', 'campaignId');
  const campaign = await ctx.store.getCampaign(id);
  if (!campaign) throw new NotFoundError('campaign', id);
  return campaign;
}

/** Start now (from draft, scheduled or paused). Refuses an audience that would be skipped whole (see `assertSomeoneRenders`). */
export async function startCampaign(ctx: EngineContext, campaignId: string, options: { allowAllSkipped?: boolean } = {}): Promise<{ campaign: Campaign; resumed: boolean }> {
  const o = validate(z.object({ allowAllSkipped: z.boolean().default(false) }).strict(), options, 'start options');
  const campaign = await getCampaign(ctx, campaignId);
  assertTransition(campaignId, campaign.status, 'running');
  if (campaign.counters.total === 0) {
    throw new ValidationError(`Campaign ${campaignId} has no recipients: add recipients before starting it.`, [{ path: 'recipients', message: 'empty audience' }]);
  }
  if (!o.allowAllSkipped) await assertSomeoneRenders(ctx, campaign);
  const started = await transition(ctx, campaign, 'running');
  return { campaign: started, resumed: campaign.status === 'paused' };
}

export async function scheduleCampaign(ctx: EngineContext, campaignId: string, at: Date | number | string): Promise<Campaign> {
  const when = validate(z.union([z.date(), z.number().int().nonnegative(), z.iso.datetime({ offset: true })]), at, 'schedule time', 'at');
  const ms = when instanceof Date ? when.getTime() : typeof when === 'string' ? Date.parse(when) : when;
  const campaign = await getCampaign(ctx, campaignId);
  assertTransition(campaignId, campaign.status, 'scheduled');
  return transition(ctx, campaign, 'scheduled', { scheduledAt: ms });
}

/** Pause by hand (reason `manual`) or cancel. */
export async function stopCampaign(ctx: EngineContext, campaignId: string, to: 'paused' | 'cancelled'): Promise<Campaign> {
  const campaign = await getCampaign(ctx, campaignId);
  assertTransition(campaignId, campaign.status, to);
  return transition(ctx, campaign, to, to === 'paused' ? { pauseReason: 'manual' } : {});
}

async function transition(ctx: EngineContext, campaign: Campaign, to: CampaignStatus, patch: { pauseReason?: PauseReason; scheduledAt?: number } = {}): Promise<Campaign> {
  const updated = await ctx.store.transitionCampaign(campaign.id, {
    from: [campaign.status],
    to,
    now: ctx.clock.now(),
    pauseReason: patch.pauseReason ?? null,
    ...(patch.scheduledAt !== undefined ? { scheduledAt: patch.scheduledAt } : {}),
  });
  if (!updated) {
    const fresh = await getCampaign(ctx, campaign.id);
    assertTransition(campaign.id, fresh.status, to);
    throw new ConflictError(`Campaign ${campaign.id} changed status concurrently (now ${fresh.status}); try again.`);
  }
  return updated;
}

/** How many pending recipients are read per page while looking for one that renders: few first (the first usually does). */
const COVERAGE_PAGES = [20, 1_000];

/**
 * A template variable without a default that no recipient has would skip every recipient as
 * `template_error`. Before starting, look for one pending recipient whose template renders (usually
 * the first page has one); if none does, refuse with a typed error that names the variables, unless
 * the caller says `allowAllSkipped`.
 */
async function assertSomeoneRenders(ctx: EngineContext, campaign: Campaign): Promise<void> {
  const required = new Map(campaign.templates.map((t) => [t, compileTemplate(t).required]));
  if ([...required.values()].every((r) => r.length === 0)) return;
  const missing = new Set<string>();
  let afterSeq = 0;
  for (;;) {
    const limit = afterSeq === 0 ? COVERAGE_PAGES[0]! : COVERAGE_PAGES[1]!;
    const page = await ctx.store.listRecipients(campaign.id, { status: ['pending'], afterSeq, limit });
    for (const r of page) {
      const needs = required.get(pickTemplate(campaign.templates, `${campaign.id}:${r.phone}`))!;
      const lacks = needs.filter((name) => !Object.hasOwn(r.vars, name) || r.vars[name] === '');
      if (lacks.length === 0) return;
      for (const name of lacks) missing.add(name);
    }
    if (page.length < limit) break;
    afterSeq = page[page.length - 1]!.seq;
  }
  if (missing.size === 0) return; // nothing pending: nothing would be skipped
  const names = [...missing].map((n) => `{{${n}}}`).join(', ');
  throw new ValidationError(
    `Campaign ${campaign.id} would skip every pending recipient: none has a value for ${names}. Give those variables in the recipients' vars, a default in the template ({{name|default}}), or start with { allowAllSkipped: true }.`,
    [...missing].map((n) => ({ path: `templates`, message: `no recipient has {{${n}}}` })),
  );
}
