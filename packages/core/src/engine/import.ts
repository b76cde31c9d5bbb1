import type { CountryCode } from 'libphonenumber-js';
import type { EngineContext } from '../context.js';
import { ConflictError, ValidationError } from '../errors.js';
import { isFinished } from '../domain/campaign-status.js';
import { normalizePhone } from '../domain/phone.js';
import { compileTemplate, pickTemplate } from '../domain/template.js';
import type { Campaign } from '../domain/types.js';
import type { NewRecipient, RecipientBuffer } from '../store/contract.js';
import { getCampaign } from './campaigns.js';
import { parseRecipientInput, type RecipientInput } from './schemas.js';

export interface ImportResult {
  /** Items read from the source. */
  processed: number;
  inserted: number;
  duplicates: number;
  invalid: number;
  optedOut: number;
  /**
   * For each template variable without a default: how many of the valid rows read lack it (counted
   * before duplicates are removed). Those recipients will be skipped as `template_error`.
   */
  missingVariables: Record<string, number>;
}

// Counts keyed by variable name in a null-prototype object: a variable may be called `__proto__`.
const emptyResult = (): ImportResult => ({ processed: 0, inserted: 0, duplicates: 0, invalid: 0, optedOut: 0, missingVariables: Object.create(null) as Record<string, number> });

/**
 * Add recipients from an array, an iterable or an async iterable of any size (streamed in chunks).
 * Phones are normalised (E.164 digits, default country BR); invalid, duplicate and opted-out numbers
 * are counted and skipped. An array is validated whole first, so a malformed item stores nothing;
 * a stream stops at its first malformed item (earlier chunks stay stored). The totals are kept in
 * the campaign's `metadata.import` for `progress()`.
 */
export async function importRecipients(
  ctx: EngineContext,
  campaignId: string,
  source: Iterable<RecipientInput> | AsyncIterable<RecipientInput>,
  options: { chunkSize?: number; defaultCountry?: CountryCode } = {},
): Promise<ImportResult> {
  const campaign = await getCampaign(ctx, campaignId);
  if (isFinished(campaign.status)) throw new ConflictError(`Campaign ${campaignId} is ${campaign.status}; create a new campaign to send to more people.`);
  if (source === null || typeof source !== 'object' || (!(Symbol.iterator in source) && !(Symbol.asyncIterator in source))) {
    throw new ValidationError('Invalid recipients: pass an array, an iterable or an async iterable of { phone, vars }', [{ path: 'recipients', message: 'not iterable' }]);
  }
  const chunkSize = options.chunkSize ?? 5_000;
  const country = (options.defaultCountry ?? ctx.options.defaultCountry) as CountryCode;
  const parsed = Array.isArray(source) ? source.map((item, i) => parseRecipientInput(item, `recipients.${i}`)) : null;
  const result = emptyResult();
  const coverage = variableCoverage(campaign, result.missingVariables);
  // A store that keeps a chunk in its own form gets each row as it is read (see StateStore.recipientBuffer).
  const store = ctx.store;
  const newChunk = async (): Promise<NewRecipient[] | RecipientBuffer> => (store.addRecipientBuffer ? await store.recipientBuffer?.() : null) ?? [];
  let chunk = await newChunk();
  // One chunk is written while the next is read and normalised (at most two in memory), in order.
  let writing: Promise<void> = Promise.resolve();
  const flush = async (done: boolean) => {
    await writing;
    if (chunk.length === 0) {
      ctx.emit('recipients:imported', { campaignId, ...counts(result), done });
      return;
    }
    const rows = chunk;
    const now = ctx.clock.now();
    chunk = done ? [] : await newChunk();
    writing = (Array.isArray(rows) ? store.addRecipients(campaignId, rows, now) : store.addRecipientBuffer!(campaignId, rows, now)).then((r) => {
      result.inserted += r.inserted;
      result.duplicates += r.duplicates;
      result.optedOut += r.optedOut;
      ctx.emit('recipients:imported', { campaignId, ...counts(result), done });
    });
    if (done) await writing;
    else writing.catch(() => undefined); // surfaced by the next flush's await
  };
  // Synchronous per item (true when the chunk is full): an await per item allocated a promise for
  // every row, garbage that outlived the chunks it was made beside.
  const take = (item: { phone: string | number; vars: Record<string, string> }): boolean => {
    result.processed++;
    const phone = normalizePhone(item.phone, country);
    if (phone === null) result.invalid++;
    else {
      coverage(phone, item.vars);
      chunk.push({ phone, vars: item.vars });
    }
    return chunk.length >= chunkSize;
  };
  // The chunk on its way to the store needs the event loop for every round trip (its statements, its
  // COPY). Read without a pause, the next chunk held the loop until it was full, so the write waited
  // for it and reading and writing took turns instead of overlapping. A turn of the loop every
  // YIELD_EVERY items lets the write go on: a million rows into PostgreSQL took 11.6 s, and take 9.8 s
  // with it (adapter-postgres bench/import-profile.ts).
  // (Counted synchronously: an await per item would make a promise per row, see `take`.)
  // The turn ends as soon as the write does: a write that needs no turn of the loop (the memory
  // store's) never waits for one, so an import under fake timers or on the virtual clock neither
  // hangs nor lets time pass (past 1,000 items it hung under vitest's fake timers).
  const yieldToWrite = () => Promise.race([writing.then(noop, noop), yieldToLoop()]);
  let sinceYield = 0;
  const turnDue = (): boolean => {
    if (++sinceYield < YIELD_EVERY) return false;
    sinceYield = 0;
    return true;
  };
  try {
    if (parsed) {
      for (const item of parsed) {
        if (take(item)) await flush(false);
        else if (turnDue()) await yieldToWrite();
      }
    } else if (Symbol.asyncIterator in source) {
      let index = 0;
      for await (const raw of source) {
        if (take(parseRecipientInput(raw, `recipients.${index++}`))) await flush(false);
        else if (turnDue()) await yieldToWrite();
      }
    } else {
      let index = 0;
      for (const raw of source) {
        if (take(parseRecipientInput(raw, `recipients.${index++}`))) await flush(false);
        else if (turnDue()) await yieldToWrite();
      }
    }
  } catch (error) {
    // A bad item or a failing source: the chunk already on its way still lands before we report.
    await writing.catch(() => undefined);
    throw error;
  }
  await flush(true);
  const lacking = Object.entries(result.missingVariables);
  if (lacking.length > 0) {
    ctx.log.warn(`campaign ${campaignId}: ${lacking.map(([name, n]) => `${n} recipient(s) lack {{${name}}}`).join(', ')}; they will be skipped as template_error`, { campaignId });
  }
  await keepTotals(ctx, campaignId, result);
  return result;
}

/** How many items an import reads between two turns of the event loop (see importRecipients). */
const YIELD_EVERY = 1_000;

const noop = (): void => undefined;

/** One turn of the event loop, I/O included: setImmediate where there is one (Node), a timer elsewhere. */
const yieldToLoop = (): Promise<void> =>
  new Promise((resolve) => (typeof globalThis.setImmediate === 'function' ? globalThis.setImmediate(resolve) : setTimeout(resolve, 0)));

const counts = (r: ImportResult) => ({ processed: r.processed, inserted: r.inserted, duplicates: r.duplicates, invalid: r.invalid, optedOut: r.optedOut });

/** Count, per variable without a default, the rows whose template needs it and who lack it. */
function variableCoverage(campaign: Campaign, missing: Record<string, number>): (phone: string, vars: Record<string, string>) => void {
  const required = new Map(campaign.templates.map((t) => [t, compileTemplate(t).required]));
  if ([...required.values()].every((r) => r.length === 0)) return () => undefined;
  return (phone, vars) => {
    for (const name of required.get(pickTemplate(campaign.templates, `${campaign.id}:${phone}`))!) {
      if (!Object.hasOwn(vars, name) || vars[name] === '') missing[name] = (missing[name] ?? 0) + 1;
    }
  };
}

/** Add this import's totals to the campaign's `metadata.import`. */
async function keepTotals(ctx: EngineContext, campaignId: string, result: ImportResult): Promise<void> {
  const fresh = await getCampaign(ctx, campaignId);
  const previous = { ...emptyResult(), ...(fresh.metadata.import as Partial<ImportResult> | undefined) };
  const missingVariables: Record<string, number> = Object.assign(Object.create(null), previous.missingVariables);
  for (const [name, n] of Object.entries(result.missingVariables)) missingVariables[name] = (missingVariables[name] ?? 0) + n;
  const total: ImportResult = {
    processed: previous.processed + result.processed,
    inserted: previous.inserted + result.inserted,
    duplicates: previous.duplicates + result.duplicates,
    invalid: previous.invalid + result.invalid,
    optedOut: previous.optedOut + result.optedOut,
    missingVariables,
  };
  await ctx.store.updateCampaign(campaignId, { metadata: { ...fresh.metadata, import: total } }, ctx.clock.now());
}
