import type { AccountRecord, Pacing, SendWindow } from './types.js';

/** A cap for the window named `key` (e.g. `2026-11-22` in the account's time zone) that ends at `endsAt`. */
export interface CapWindow {
  key: string;
  limit: number;
  endsAt: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface LocalDate {
  year: number;
  month: number;
  day: number;
  /** ISO weekday: 1 = Monday .. 7 = Sunday. */
  weekday: number;
}

interface LocalTime extends LocalDate {
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Wall-clock time of `at` in `timeZone`. */
export function localTime(at: number, timeZone: string): LocalTime {
  const p = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(new Date(at))) {
    if (part.type in p) p[part.type as keyof typeof p] = Number(part.value);
  }
  return { ...p, weekday: isoWeekday(p.year, p.month, p.day) };
}

function isoWeekday(year: number, month: number, day: number): number {
  const d = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return d === 0 ? 7 : d;
}

/** The calendar date `days` after `date` (calendar arithmetic, independent of any time zone). */
function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() === 0 ? 7 : d.getUTCDay() };
}

/** Offset of `timeZone` from UTC at `at`, in ms (local wall time minus UTC). */
function offsetAt(at: number, timeZone: string): number {
  const t = localTime(at, timeZone);
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second) - (at - (((at % 1000) + 1000) % 1000));
}

/**
 * The instant at which the wall clock in `timeZone` reads `minutes` past midnight on `date`. Two
 * offset lookups settle it across a DST change; a wall time read twice (fall back) gives the first;
 * a wall time skipped by a spring-forward gives the first minute after the gap.
 */
export function zonedInstant(date: LocalDate, minutes: number, timeZone: string): number {
  // Asked again on every poll of a closed window: the answer never changes, so it is kept.
  const key = `${timeZone}|${date.year}-${date.month}-${date.day}|${minutes}`;
  let at = instants.get(key);
  if (at === undefined) {
    if (instants.size >= 4_096) instants.clear();
    at = computeZonedInstant(date, minutes, timeZone);
    instants.set(key, at);
  }
  return at;
}

const instants = new Map<string, number>();

function computeZonedInstant(date: LocalDate, minutes: number, timeZone: string): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day) + minutes * MINUTE;
  const first = wall - offsetAt(wall, timeZone);
  const second = wall - offsetAt(first, timeZone);
  const reads = (at: number) => {
    const t = localTime(at, timeZone);
    return t.year === date.year && t.month === date.month && t.day === date.day && t.hour * 60 + t.minute === minutes;
  };
  const exact = [first, second].filter(reads);
  if (exact.length > 0) return Math.min(...exact);
  // In a spring-forward gap: walk to the first minute the wall clock reaches (a few hours at most).
  let at = Math.min(first, second) - (((Math.min(first, second) % MINUTE) + MINUTE) % MINUTE);
  for (let i = 0; i < 6 * 60; i++, at += MINUTE) {
    const t = localTime(at, timeZone);
    if (Date.UTC(t.year, t.month - 1, t.day) + (t.hour * 60 + t.minute) * MINUTE >= wall) return at;
  }
  return first;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The hourly and daily cap windows for an account's send at `now` (days counted in `timeZone`, DST-correct). */
export function capWindows(pacing: Pacing, now: number, timeZone: string): { hourly?: CapWindow; daily?: CapWindow } {
  const out: { hourly?: CapWindow; daily?: CapWindow } = {};
  if (pacing.hourlyCap === null && pacing.dailyCap === null && pacing.warmup === null) return out;
  const t = localTime(now, timeZone);
  if (pacing.hourlyCap !== null) {
    const msIntoHour = (t.minute * 60 + t.second) * 1000 + (((now % 1000) + 1000) % 1000);
    out.hourly = { key: `${t.year}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}`, limit: pacing.hourlyCap, endsAt: now - msIntoHour + HOUR };
  }
  const dailyLimit = dailyCapAt(pacing, now);
  if (dailyLimit !== null) {
    // The day ends at the next local midnight: 23 or 25 hours away on DST days.
    out.daily = { key: `${t.year}-${pad(t.month)}-${pad(t.day)}`, limit: dailyLimit, endsAt: zonedInstant(addDays(t, 1), 0, timeZone) };
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

/**
 * Whether the window is open at `now`, and if not, when it next opens. `end` before `start` spans
 * midnight; its early-morning part belongs to the previous day's window (for `days`). Computed
 * directly: one wall-clock reading of `now`, then the opening on the first allowed day.
 */
export function sendWindowState(window: SendWindow, now: number): { open: boolean; opensAt: number } {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const t = localTime(now, window.timeZone);
  const m = t.hour * 60 + t.minute;
  const spans = start > end;
  const inRange = spans ? m >= start || m < end : m >= start && m < end;
  // The day whose window this moment belongs to: yesterday's for the small hours of a spanning window.
  const openedOn = spans && m < end ? addDays(t, -1).weekday : t.weekday;
  if (inRange && (!window.days || window.days.includes(openedOn))) return { open: true, opensAt: now };
  for (let k = 0; k <= 7; k++) {
    const date = addDays(t, k);
    if (window.days && !window.days.includes(date.weekday)) continue;
    const at = zonedInstant(date, start, window.timeZone);
    if (at > now) return { open: false, opensAt: at };
  }
  // Unreachable: `days` is never empty, so some day within a week opens after today's.
  return { open: false, opensAt: now + 7 * DAY };
}
