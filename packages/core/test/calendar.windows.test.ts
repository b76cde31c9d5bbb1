import { describe, expect, it } from 'vitest';
import { capWindows, sendWindowState } from '../src/domain/calendar.js';
import type { Pacing, SendWindow } from '../src/domain/types.js';
import { seededRandom } from '@disparo/core/testing';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const pacing = (o: Partial<Pacing> = {}): Pacing => ({
  intervalMs: { min: 0, max: 0 },
  hourlyCap: null,
  dailyCap: null,
  warmup: null,
  typingMsPerChar: 0,
  typingMaxMs: 0,
  maxInFlight: 1,
  ratePerSecond: null,
  ...o,
});

/** The reference: walk minute by minute (what the engine did before), slow but plainly right. */
function walk(window: SendWindow, now: number): { open: boolean; opensAt: number } {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: window.timeZone, hourCycle: 'h23', weekday: 'short', hour: 'numeric', minute: 'numeric' });
  const days: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
  const start = Number(window.start.slice(0, 2)) * 60 + Number(window.start.slice(3));
  const end = Number(window.end.slice(0, 2)) * 60 + Number(window.end.slice(3));
  const openAt = (at: number) => {
    const p = Object.fromEntries(f.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
    const m = Number(p.hour) * 60 + Number(p.minute);
    const weekday = days[p.weekday!]!;
    const inRange = start <= end ? m >= start && m < end : m >= start || m < end;
    if (!inRange) return false;
    if (!window.days) return true;
    return window.days.includes(start > end && m < end ? ((weekday + 5) % 7) + 1 : weekday);
  };
  if (openAt(now)) return { open: true, opensAt: now };
  for (let at = now - (now % MINUTE) + MINUTE; at < now + 8 * DAY; at += MINUTE) if (openAt(at)) return { open: false, opensAt: at };
  throw new Error('never opens');
}

describe('send windows, computed directly', () => {
  it('agree with a minute-by-minute walk on random windows, days and instants, across DST changes', () => {
    const random = seededRandom(11);
    const zones = ['America/Sao_Paulo', 'America/New_York', 'Europe/Lisbon', 'Australia/Sydney', 'Asia/Kolkata', 'UTC'];
    const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    // Instants around the 2026 DST changes of New York, Lisbon and Sydney, and elsewhere in the year.
    const anchors = [Date.UTC(2026, 2, 8, 6), Date.UTC(2026, 10, 1, 5), Date.UTC(2026, 2, 29, 0), Date.UTC(2026, 9, 25, 0), Date.UTC(2026, 3, 5, 15), Date.UTC(2026, 6, 1, 12)];
    for (let i = 0; i < 250; i++) {
      const window: SendWindow = {
        start: hhmm(Math.floor(random() * 96) * 15),
        end: hhmm(Math.floor(random() * 96) * 15),
        timeZone: zones[Math.floor(random() * zones.length)]!,
        ...(random() < 0.5 ? { days: [1, 2, 3, 4, 5, 6, 7].filter(() => random() < 0.4).concat([1 + Math.floor(random() * 7)]) } : {}),
      };
      if (window.start === window.end) continue;
      const now = anchors[i % anchors.length]! + Math.floor((random() - 0.5) * 4 * DAY);
      expect(sendWindowState(window, now), `${JSON.stringify(window)} at ${new Date(now).toISOString()}`).toEqual(walk(window, now));
    }
  });

  it('a daily cap ends at the next local midnight, also on 23- and 25-hour days', () => {
    const daily = (now: number, timeZone: string) => capWindows(pacing({ dailyCap: 10 }), now, timeZone).daily!;
    // New York springs forward on 2026-03-08 (a 23-hour day) and falls back on 2026-11-01 (25 hours).
    for (const hour of [6, 16]) expect(daily(Date.UTC(2026, 2, 8, hour, 30), 'America/New_York')).toEqual({ key: '2026-03-08', limit: 10, endsAt: Date.UTC(2026, 2, 9, 4) });
    for (const hour of [4, 16]) expect(daily(Date.UTC(2026, 10, 1, hour, 30), 'America/New_York')).toEqual({ key: '2026-11-01', limit: 10, endsAt: Date.UTC(2026, 10, 2, 5) });
    expect(daily(Date.UTC(2026, 0, 5, 15), 'America/Sao_Paulo')).toEqual({ key: '2026-01-05', limit: 10, endsAt: Date.UTC(2026, 0, 6, 3) });
  });
});
