import type { AccountRecord, AccountState, ConnectionState } from '../domain/types.js';

/** Why an account can or cannot send now. */
export type AccountUsability = 'usable' | 'stopped' | 'disconnected' | 'cooling_down';

/**
 * Account usability as data, first matching rule wins; an account no rule matches is `usable`
 * (a disabled account whose cooldown ended is usable again: its next send is the probe). Every
 * store decides it from this table: the memory store through `accountUsability`, the SQL stores in
 * their reservation function, checked case by case against it by the conformance suite.
 */
export const ACCOUNT_USABILITY_RULES: ReadonlyArray<{
  state?: AccountState;
  connection?: ConnectionState;
  /** `disabledUntil` is after now. */
  coolingDown?: boolean;
  result: Exclude<AccountUsability, 'usable'>;
}> = [
  { state: 'stopped', result: 'stopped' },
  { connection: 'close', result: 'disconnected' },
  { state: 'disabled', coolingDown: true, result: 'cooling_down' },
];

export function accountUsability(a: Pick<AccountRecord, 'state' | 'connection' | 'disabledUntil'>, now: number): AccountUsability {
  const coolingDown = a.disabledUntil !== null && a.disabledUntil > now;
  for (const rule of ACCOUNT_USABILITY_RULES) {
    if (rule.state !== undefined && rule.state !== a.state) continue;
    if (rule.connection !== undefined && rule.connection !== a.connection) continue;
    if (rule.coolingDown !== undefined && rule.coolingDown !== coolingDown) continue;
    return rule.result;
  }
  return 'usable';
}

export const isUsable = (a: Pick<AccountRecord, 'state' | 'connection' | 'disabledUntil'>, now: number): boolean => accountUsability(a, now) === 'usable';

/** When a currently unusable account may come back by itself (end of a cooldown), or null if none will. */
export function earliestReturn(accounts: AccountRecord[], now: number): number | null {
  let at: number | null = null;
  for (const a of accounts) {
    if (accountUsability(a, now) !== 'cooling_down') continue;
    at = at === null ? a.disabledUntil! : Math.min(at, a.disabledUntil!);
  }
  return at;
}
