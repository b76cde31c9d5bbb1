/**
 * Disparo demo: a campaign of a few thousand recipients sent through three simulated WhatsApp
 * accounts with fast pacing, a live progress bar, and a summary per status and per batch.
 *
 *   pnpm demo                 # run (or resume) the demo campaign
 *   pnpm demo --fresh         # forget the previous run and start over
 *   pnpm demo --recipients 5000
 */
import { createEngine, createSimulatorTransport, NotFoundError, type Campaign, type Engine, type Progress } from '@disparo/core';
import { LiveLine, renderProgress, statusRows } from './progress-bar.js';
import { openStore } from './store.js';
import type { RunClock } from './run-clock.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`--${name} needs a positive whole number, got "${args[i + 1]}"`);
    process.exit(2);
  }
  return value;
};

const RECIPIENTS = option('recipients', 3_000);
const CAMPAIGN_ID = 'demo-campaign';
const RUN = Date.now().toString(36);

/**
 * After a clean interrupt (state saved, resumable) the demo exits 0 when a package manager runs it:
 * pnpm reports any other ending, even 130 or death by SIGINT, as a failed script (ELIFECYCLE) under our
 * message, while `npx` still hands the shell 130. Run directly (tsx src/main.ts), it exits 130 as usual.
 */
const INTERRUPTED_EXIT = process.env.npm_lifecycle_event ? 0 : 130;

/** What Ctrl-C does right now; replaced as the demo moves from opening the store to sending. */
let onInterrupt: () => void = () => {
  console.log('\nInterrupted while opening the store; nothing was sent.');
  process.exit(INTERRUPTED_EXIT);
};
let interruptedAt = 0;
const interrupt = () => {
  // pnpm passes the terminal's Ctrl-C on to us, so the same keypress arrives twice within milliseconds.
  if (interruptedAt && Date.now() - interruptedAt < 1_000) return;
  if (interruptedAt) {
    console.error('\nStopping now. The message that was on the wire is settled as in doubt on the next run.');
    process.exit(130);
  }
  interruptedAt = Date.now();
  onInterrupt();
};
process.on('SIGINT', interrupt);
process.on('SIGTERM', interrupt);

async function campaignOrNull(engine: Engine, id: string): Promise<Campaign | null> {
  try {
    return await engine.getCampaign(id);
  } catch (error) {
    if (NotFoundError.isInstance(error)) return null;
    throw error;
  }
}

async function main() {
  const { store, clock, description, close } = await openStore({ fresh: flag('fresh') });
  onInterrupt = () => {
    console.log('\nInterrupted before sending started. Run the demo again: it picks up where it stopped.');
    void close().finally(() => process.exit(INTERRUPTED_EXIT));
  };
  console.log(`Disparo demo — store: ${description}`);

  const accounts = ['acct-a', 'acct-b', 'acct-c'].map((id, i) => ({
    id,
    transport: createSimulatorTransport({
      seed: 100 + i,
      // A fresh id space per run: the store outlives the process, the simulator's counter does not.
      messageIdPrefix: `SIM-${RUN}-${i}-`,
      latencyMs: { min: 2, max: 12 },
      failureRates: { transient: 0.02, rate_limited: 0.003, invalid_recipient: 0.01, permanent: 0.002 },
      rateLimitRetryAfterMs: 300,
      receipts: { deliveredAfterMs: 400, readAfterMs: 1_500, readRate: 0.6 },
    }),
    // Fast pacing so the demo finishes in seconds; real campaigns use the seed default 5-15 s.
    pacing: { intervalMs: { min: 5, max: 25 } },
  }));
  const engine = createEngine({ store, accounts, pollIntervalMs: 100, leaseMs: 5_000 });
  engine.on('error', ({ context, error }) => console.error(`\n[error] ${context}:`, error));

  let campaign = await campaignOrNull(engine, CAMPAIGN_ID);
  if (campaign && (campaign.status === 'completed' || campaign.status === 'cancelled')) {
    console.log(`The demo campaign already ${campaign.status}. Summary below; run "pnpm demo --fresh" to start over.`);
  } else if (campaign && campaign.status !== 'draft') {
    console.log(`Resuming the demo campaign in batch ${campaign.currentBatch} (${campaign.counters.pending + campaign.counters.sending} of ${campaign.counters.total} recipients left).`);
    if (campaign.status === 'paused') await engine.resume(CAMPAIGN_ID);
  } else {
    // A first run, or one interrupted during the import: importing again is safe (phones already in count as duplicates).
    campaign ??= await engine.createCampaign({
      id: CAMPAIGN_ID,
      name: 'Black Friday (demo)',
      templates: ['{Olá|Oi|E aí}, {{name|cliente}}! {A Black Friday chegou|Nossa Black Friday começou}: {{discount}}% off até domingo. Responda SAIR para não receber mais.'],
      accountIds: accounts.map((a) => a.id),
      batchSize: 500,
      batchPauseMs: { min: 300, max: 800 },
      maxAttempts: 3,
      retryBackoffMs: { min: 50, max: 200 },
    });
    const imported = await engine.addRecipients(CAMPAIGN_ID, audience(RECIPIENTS));
    console.log(
      `Imported ${imported.inserted} recipients (${imported.duplicates} duplicates, ${imported.invalid} invalid numbers skipped) into ${Math.ceil(imported.inserted / 500)} batches of 500.`,
    );
    await engine.start(CAMPAIGN_ID);
  }

  const line = new LiveLine();
  const running = (await engine.getCampaign(CAMPAIGN_ID)).status === 'running';
  if (running) {
    try {
      await send(engine, clock, line);
    } catch (error) {
      await close();
      throw error;
    }
  }

  const p = await engine.progress(CAMPAIGN_ID);
  line.done(render(p, clock));
  printSummary(p, clock);
  await close();
}

const render = (p: Progress, clock: RunClock) =>
  renderProgress(p, { perSecond: clock.rate(p.processed), etaMs: clock.etaMs(p.processed, p.remaining) });

/** Runs the engine until the campaign completes or Ctrl-C, with the live progress line. */
async function send(engine: Engine, clock: RunClock, line: LiveLine): Promise<void> {
  clock.start((await engine.progress(CAMPAIGN_ID)).processed);
  let ticking = true;
  let last = '';
  const tick = async () => {
    const p = await engine.progress(CAMPAIGN_ID);
    if (!ticking) return;
    clock.save(Date.now(), false);
    last = render(p, clock);
    line.update(last);
  };
  const timer = setInterval(() => void tick().catch(() => undefined), 150);
  const completed = new Promise<'completed'>((resolve) => engine.on('campaign:completed', ({ campaign }) => campaign.id === CAMPAIGN_ID && resolve('completed')));
  const interrupted = new Promise<'interrupted'>((resolve) => {
    onInterrupt = () => resolve('interrupted');
  });
  const run = engine.run();
  const outcome = await Promise.race([completed, interrupted]);
  ticking = false;
  clearInterval(timer);
  if (outcome === 'interrupted') {
    line.done(last);
    console.log('Interrupted: the message on the wire finishes, then we stop. Run the demo again to resume.');
  }
  await engine.stop();
  await run;
  clock.stop();
  if (outcome === 'interrupted') {
    const p = await engine.progress(CAMPAIGN_ID);
    console.log(`Stopped at ${p.percent.toFixed(1)}%: ${p.sent} sent, ${p.remaining} left.`);
    throw new Interrupted();
  }
}

class Interrupted extends Error {}

function printSummary(p: Progress, clock: RunClock) {
  const runs = clock.runCount;
  const took = `${(clock.activeMs() / 1000).toFixed(1)} s of sending${runs > 1 ? ` over ${runs} runs (time between runs not counted)` : ''}`;
  console.log(`\nCampaign "${p.name}" ${p.status}${p.status === 'completed' ? ` in ${took}` : ''}.`);
  console.log('\nPer status ("sent" = every message that went out, as in the progress line and the batches):');
  console.table(statusRows(p));
  console.log('Per batch:');
  console.table(
    p.batches.map((b) => ({
      batch: b.batch,
      size: b.size,
      sent: b.sent,
      failed: b.failed,
      skipped: b.skipped,
      'in doubt': b.unknown,
    })),
  );
}

/** A made-up audience: Brazilian mobiles in assorted formats, a few duplicates and a few bad numbers. */
function* audience(n: number): Generator<{ phone: string; vars: Record<string, string> }> {
  const names = ['Ana', 'Bruno', 'Carla', 'Diego', 'Elisa', 'Fábio', 'Gabi', 'Hugo', ''];
  const ddds = [11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 31, 41, 47, 48, 51, 61, 62, 71, 81, 85, 91, 92];
  for (let i = 0; i < n; i++) {
    const ddd = ddds[i % ddds.length]!;
    const number = `9${String(10_000_000 + ((i * 7_919) % 89_999_999)).padStart(8, '0')}`;
    const phone = i % 97 === 0 ? '12345' : i % 3 === 0 ? `+55 (${ddd}) ${number.slice(0, 5)}-${number.slice(5)}` : `55${ddd}${number}`;
    yield { phone, vars: { name: names[i % names.length]!, discount: String(10 + (i % 5) * 10) } };
    if (i % 250 === 0) yield { phone, vars: {} }; // a duplicate
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    // Interrupted (also mid-import, where closing the store fails the import): the message is already out.
    if (error instanceof Interrupted || interruptedAt) process.exit(INTERRUPTED_EXIT);
    console.error(error);
    process.exit(1);
  },
);
