import type { Progress } from '@disparo/core';

const fmtDuration = (ms: number | null) => {
  if (ms === null) return '--';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};

/** This run's pace, measured by the demo (the store's own history spans every run, downtime included). */
export interface RunPace {
  /** Recipients per second since this run started; null while too early to say. */
  perSecond: number | null;
  etaMs: number | null;
}

/**
 * One line: bar, percent, counts, rate, ETA, batch. "sent" is every message that went out, receipts or
 * not (the per-batch table's "sent"); in brackets, how many of those were since delivered or read.
 * Redrawn in place on a terminal, printed every few seconds otherwise.
 */
export function renderProgress(p: Progress, pace: RunPace, width = 20): string {
  const filled = Math.round((p.percent / 100) * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const c = p.counters;
  const rate = p.status !== 'running' ? '0' : pace.perSecond === null ? '--' : pace.perSecond.toFixed(0);
  return (
    `${bar} ${p.percent.toFixed(1).padStart(5)}%  ` +
    `sent ${p.sent} (${c.delivered} delivered, ${c.read} read)  failed ${c.failed}  skipped ${c.skipped}  in doubt ${c.unknown}  ` +
    `| ${rate} msg/s  ETA ${fmtDuration(pace.etaMs)}  ` +
    `| batch ${Math.min(p.currentBatch, p.totalBatches)}/${p.totalBatches}  [${p.status}${p.pauseReason ? `: ${p.pauseReason}` : ''}]`
  );
}

/** The summary's per-status table, named like the progress line: "sent" is the sum of the three rows under it. */
export function statusRows(p: Progress): Record<string, { recipients: number }> {
  const c = p.counters;
  const rows: Array<[string, number]> = [
    ['sent', p.sent],
    ['  of which no receipt yet', c.sent],
    ['  of which delivered', c.delivered],
    ['  of which read', c.read],
    ['failed', c.failed],
    ['skipped', c.skipped],
    ['in doubt (unknown)', c.unknown],
    ['pending', c.pending + c.sending],
    ['total', c.total],
  ];
  return Object.fromEntries(rows.map(([k, v]) => [k, { recipients: v }]));
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
