import type { Progress } from '@disparo/core';

const fmtDuration = (ms: number | null) => {
  if (ms === null) return '--';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};

/** One line: bar, percent, counts, rate, ETA, batch. Redrawn in place on a terminal, printed every few seconds otherwise. */
export function renderProgress(p: Progress, width = 28): string {
  const filled = Math.round((p.percent / 100) * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const c = p.counters;
  return (
    `${bar} ${p.percent.toFixed(1).padStart(5)}%  ` +
    `sent ${p.sent}  failed ${c.failed}  skipped ${c.skipped}  unknown ${c.unknown}  ` +
    `| ${(p.ratePerMinute / 60).toFixed(0)} msg/s  ETA ${fmtDuration(p.etaMs)}  ` +
    `| batch ${Math.min(p.currentBatch, p.totalBatches)}/${p.totalBatches}  [${p.status}${p.pauseReason ? `: ${p.pauseReason}` : ''}]`
  );
}

export class LiveLine {
  private lastPlain = 0;
  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  update(line: string, force = false): void {
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns ?? 200) - 1)}`);
    } else if (force || Date.now() - this.lastPlain > 2_000) {
      this.lastPlain = Date.now();
      this.out.write(`${line}\n`);
    }
  }

  done(line: string): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}\n`);
    else this.out.write(`${line}\n`);
  }
}
