/**
 * Deterministic simulation: `pnpm sim --seeds N [--from S] [--seed S]`. Runs N seeds of the whole
 * system with crashes and faults on virtual time, prints a summary, exits 1 on any invariant
 * violation and prints the seed to replay (`pnpm sim --seed S`).
 */
import { runSimulation } from '../src/testing/simulation/simulation.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
};

async function main() {
  const single = arg('seed');
  const from = single ?? arg('from') ?? 1;
  const count = single !== undefined ? 1 : (arg('seeds') ?? 100);
  if (!Number.isInteger(from) || !Number.isInteger(count) || count < 1) {
    console.error('usage: pnpm sim --seeds N [--from S] | --seed S');
    process.exit(2);
  }
  const started = Date.now();
  const totals = { recipients: 0, sends: 0, crashes: 0, engines: 0, steps: 0, optOuts: 0, inDoubt: 0 };
  const failed: number[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const report = await runSimulation({ seed, chaosMs: arg('chaos-ms') ?? 60_000 });
    for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += report.stats[k];
    if (!report.ok) {
      failed.push(seed);
      console.error(`seed ${seed} FAILED:\n  ${report.violations.slice(0, 10).join('\n  ')}\n  replay: pnpm sim --seed ${seed}`);
    }
    if (process.stdout.isTTY) process.stdout.write(`\r${seed - from + 1}/${count} seeds, ${failed.length} failed`);
  }
  if (process.stdout.isTTY) process.stdout.write('\n');
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `${count} seeds in ${seconds} s: ${count - failed.length} passed, ${failed.length} failed. ` +
      `recipients ${totals.recipients}, sends ${totals.sends}, crashes ${totals.crashes}, engines ${totals.engines}, step calls ${totals.steps}, opt-outs ${totals.optOuts}, in doubt ${totals.inDoubt}`,
  );
  if (failed.length) {
    console.log(`failed seeds: ${failed.join(' ')}`);
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
