/**
 * Disparo demo: a campaign of a few thousand recipients sent through three simulated WhatsApp
 * accounts with fast pacing, a live progress bar, and a summary per status and per batch.
 *
 *   pnpm demo                 # run (or resume) the demo campaign
 *   pnpm demo --fresh         # forget the previous run and start over
 *   pnpm demo --recipients 5000
 */
import { createEngine, createSimulatorTransport, type StateStore } from '@disparo/core';
import { LiveLine, renderProgress } from './progress-bar.js';
import { openStore } from './store.js';

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

async function main() {
  const { store, description, close } = await openStore({ fresh: flag('fresh') });
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

  let campaign = await store.getCampaign(CAMPAIGN_ID);
  if (campaign && (campaign.status === 'completed' || campaign.status === 'cancelled')) {
    console.log(`The demo campaign already ${campaign.status}. Summary below; run "pnpm demo --fresh" to start over.\n`);
  } else if (campaign && campaign.status !== 'draft') {
    console.log(`Resuming the demo campaign from batch ${campaign.currentBatch} (${campaign.counters.pending + campaign.counters.sending} recipients left).`);
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
  let finished = (await store.getCampaign(CAMPAIGN_ID))!.status !== 'running';
  const done = new Promise<void>((resolve) => {
    if (finished) resolve();
    engine.on('campaign:completed', () => resolve());
  });
  const stopping = () => {
    line.done('\nInterrupted: the message on the wire finishes, then we stop. Run the demo again to resume.');
    void engine.stop().then(() => close()).then(() => process.exit(130));
  };
  process.once('SIGINT', stopping);
  process.once('SIGTERM', stopping);

  const running = finished ? Promise.resolve() : engine.run();
  const timer = setInterval(() => {
    void engine.progress(CAMPAIGN_ID).then((p) => line.update(renderProgress(p)));
  }, 150);
  await done;
  finished = true;
  clearInterval(timer);
  await engine.stop();
  await running;

  const p = await engine.progress(CAMPAIGN_ID);
  line.done(renderProgress(p));
  await printSummary(store, CAMPAIGN_ID);
  await close();
}

async function printSummary(store: StateStore, campaignId: string) {
  const c = (await store.getCampaign(campaignId))!;
  const batches = await store.listBatches(campaignId);
  console.log(`\nCampaign "${c.name}" ${c.status}${c.finishedAt && c.startedAt ? ` in ${((c.finishedAt - c.startedAt) / 1000).toFixed(1)} s` : ''}.`);
  console.log('\nPer status:');
  console.table(Object.fromEntries(Object.entries(c.counters).map(([k, v]) => [k, { recipients: v }])));
  console.log('Per batch:');
  console.table(
    batches.map((b) => ({
      batch: b.batch,
      size: b.size,
      sent: b.sent,
      failed: b.failed,
      skipped: b.skipped,
      unknown: b.unknown,
      seconds: b.startedAt && b.finishedAt ? Number(((b.finishedAt - b.startedAt) / 1000).toFixed(1)) : null,
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

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
