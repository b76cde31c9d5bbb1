import { validate } from '../errors.js';
import { setMaxListeners } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { EngineContext } from '../context.js';
import { isFinished } from '../domain/campaign-status.js';
import type { CampaignStatus } from '../domain/types.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { getCampaign } from './campaigns.js';
import { housekeeping } from './housekeeping.js';
import { heartbeat, recordKept } from './runner.js';
import { stepOptionsSchema, type StepOptions } from './schemas.js';

export interface StepResult {
  /** True when there is nothing left to do: the campaign finished (or no campaign is running). */
  done: boolean;
  status: CampaignStatus | null;
  processed: number;
  remaining: number;
  /** When to call `step()` again (epoch ms); null when done or waiting on a human (manual pause). */
  continueAt: number | null;
}

/**
 * A bounded slice of work for hosts without long-lived processes (an n8n webhook calling itself, a
 * cron-triggered edge function): housekeeping, then ticks on the campaign (or every running one)
 * until `maxBatches` batches finish or `budgetMs` runs out. Each call leases under its own owner, so
 * overlapping calls never double-send, and a lost call loses nothing (its leases expire; the next
 * call resumes).
 */
export async function step(ctx: EngineContext, stopSignal: AbortSignal, ready: () => Promise<void>, options: StepOptions | undefined): Promise<StepResult> {
  const o = validate(stepOptionsSchema, options ?? {}, 'step options');
  await ready();
  const { store, clock } = ctx;
  const start = clock.now();
  const deadline = start + o.budgetMs;
  if (o.campaignId) await getCampaign(ctx, o.campaignId);
  await housekeeping(ctx, start);

  const dispatcher = new Dispatcher(ctx, `${ctx.options.workerId}:step:${randomUUID().slice(0, 8)}`);
  const controller = new AbortController();
  const signal = AbortSignal.any([controller.signal, stopSignal]);
  setMaxListeners(0, signal); // one listener per send waiting for its slot (see runner.ts)
  const beating = heartbeat(ctx, dispatcher.owner, signal);
  let processed = 0;
  let batches = 0;
  let continueAt: number | null = null;
  try {
    const ids = o.campaignId ? [o.campaignId] : (await store.listCampaigns({ status: ['running'] })).map((c) => c.id);
    outer: for (const id of ids) {
      while (clock.now() < deadline && !signal.aborted) {
        const r = await dispatcher.tick(id, { deadline, signal });
        if (r.kind === 'finished') break;
        if (r.kind === 'wait') {
          if (r.until > deadline) {
            continueAt = continueAt === null ? r.until : Math.min(continueAt, r.until);
            break;
          }
          await clock.sleep(Math.max(0, r.until - clock.now()), signal).catch(() => undefined);
          continue;
        }
        processed += r.processed;
        if (r.batchFinished && ++batches >= o.maxBatches) break outer;
      }
    }
  } finally {
    await recordKept(ctx, dispatcher);
    controller.abort();
    await beating;
    await store.release(dispatcher.owner).catch((error) => ctx.fail('releasing step leases', error));
  }

  const now = clock.now();
  if (o.campaignId) {
    const c = await getCampaign(ctx, o.campaignId);
    const remaining = c.counters.pending + c.counters.sending;
    const done = isFinished(c.status);
    const waiting =
      c.status === 'scheduled' ? c.scheduledAt : c.status === 'running' ? (continueAt ?? now) : c.status === 'paused' && c.pauseReason !== 'manual' ? now + ctx.options.pollIntervalMs : null;
    return { done, status: c.status, processed, remaining, continueAt: done ? null : waiting };
  }
  const open = await store.listCampaigns({ status: ['running', 'scheduled'] });
  const remaining = open.reduce((s, c) => s + c.counters.pending + c.counters.sending, 0);
  const next = open.map((c) => (c.status === 'scheduled' ? (c.scheduledAt ?? now) : (continueAt ?? now)));
  return { done: open.length === 0, status: null, processed, remaining, continueAt: next.length ? Math.max(now, Math.min(...next)) : null };
}
