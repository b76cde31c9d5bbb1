import { createEngine, createSimulatorTransport, silentLogger, type StateStore } from '@disparo/core';

/**
 * The benches' audience and arguments, in one place: recipients `offset`..`offset + n` in the mixed
 * formats real lists come in (every third one written out with +55 and punctuation).
 */
export function* audience(n: number, offset = 0) {
  for (let i = 0; i < n; i++) {
    const k = offset + i;
    const local = `9${String(10_000_000 + (k % 89_999_999)).padStart(8, '0')}`;
    const ddd = 11 + (Math.floor(k / 89_999_999) % 80);
    yield { phone: k % 3 === 0 ? `+55 (${ddd}) ${local.slice(0, 5)}-${local.slice(5)}` : `55${ddd}${local}`, vars: { name: `c${k}` } };
  }
}

/** `--name value` from the command line as a number, or `fallback`. */
export const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

/**
 * The throughput benches' engine and campaign, in one place (pg.bench.ts measures it, timeline.ts
 * explains the same run): zero-latency simulators, no pacing, `groupSize` sends per checkpoint (1: one
 * durable checkpoint per message), batches of 10,000 with no pause between them.
 */
export async function benchCampaign(store: StateStore, ids: string[], groupSize: number, idPrefix = '') {
  const engine = createEngine({
    store,
    logger: silentLogger,
    pollIntervalMs: 100,
    claimSize: groupSize > 1 ? 2_000 : 500,
    checkpoints: { groupSize },
    accounts: ids.map((id, i) => ({ id, transport: createSimulatorTransport({ seed: i, messageIdPrefix: `${idPrefix}${i}-` }), pacing: { intervalMs: { min: 0, max: 0 } } })),
  });
  const campaign = await engine.createCampaign({ name: 'bench', templates: ['Oi {{name}}, {tudo bem|como vai}?'], accountIds: ids, batchSize: 10_000, batchPauseMs: { min: 0, max: 0 } });
  return { engine, campaign };
}
