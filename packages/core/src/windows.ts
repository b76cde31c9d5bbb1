import type { CapWindow } from './store.js';
import type { AccountRecord, Pacing, SendWindow } from './types.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number; // ISO 1..7
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

/** Wall-clock time of `at` in `timeZone`. */
export function localTime(at: number, timeZone: string): LocalTime {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(at))) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAYS[parts.weekday!] ?? 1,
  };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The hourly and daily cap windows for an account's send at `now` (days counted in `timeZone`). */
export function capWindows(pacing: Pacing, now: number, timeZone: string): { hourly?: CapWindow; daily?: CapWindow } {
  const out: { hourly?: CapWindow; daily?: CapWindow } = {};
  if (pacing.hourlyCap === null && pacing.dailyCap === null && pacing.warmup === null) return out;
  const t = localTime(now, timeZone);
  const msIntoHour = (t.minute * 60 + t.second) * 1000 + (now % 1000);
  if (pacing.hourlyCap !== null) {
    out.hourly = { key: `${t.year}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}`, limit: pacing.hourlyCap, endsAt: now - msIntoHour + HOUR };
  }
  const dailyLimit = dailyCapAt(pacing, now);
  if (dailyLimit !== null) {
    const msIntoDay = t.hour * HOUR + msIntoHour;
    out.daily = { key: `${t.year}-${pad(t.month)}-${pad(t.day)}`, limit: dailyLimit, endsAt: now - msIntoDay + DAY };
  }
  return out;
}

/** The daily cap in force at `now`: the warm-up ramp (start * growth^day) up to `dailyCap`. */
export function dailyCapAt(pacing: Pacing, now: number): number | null {
  if (!pacing.warmup) return pacing.dailyCap;
  const day = Math.max(0, Math.floor((now - pacing.warmup.startedAt) / DAY));
  const ramp = Math.floor(pacing.warmup.start * pacing.warmup.growth ** day);
  return pacing.dailyCap === null ? ramp : Math.min(pacing.dailyCap, ramp);
}

/** Whether the account used up today's cap (in `timeZone`), so it cannot send before tomorrow. */
export function isDailyCapped(account: AccountRecord, now: number, timeZone: string): boolean {
  const daily = capWindows(account.pacing, now, timeZone).daily;
  return daily !== undefined && account.dayKey === daily.key && account.sentToday >= daily.limit;
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Whether the window is open at `now`, and if not, when it next opens. `end` before `start` spans midnight. */
export function sendWindowState(window: SendWindow, now: number): { open: boolean; opensAt: number } {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const isOpenAt = (at: number) => {
    const t = localTime(at, window.timeZone);
    const m = t.hour * 60 + t.minute;
    const inRange = start <= end ? m >= start && m < end : m >= start || m < end;
    if (!inRange) return false;
    if (!window.days) return true;
    // For windows spanning midnight, the early-morning part belongs to the previous day's window.
    const day = start > end && m < end ? ((t.weekday + 5) % 7) + 1 : t.weekday;
    return window.days.includes(day);
  };
  if (isOpenAt(now)) return { open: true, opensAt: now };
  // Walk forward minute by minute boundaries (at most 8 days) to the next opening.
  const firstMinute = now - (now % 60_000) + 60_000;
  for (let at = firstMinute; at < now + 8 * DAY; at += 60_000) {
    if (isOpenAt(at)) return { open: false, opensAt: at };
  }
  return { open: false, opensAt: now + DAY };
}
