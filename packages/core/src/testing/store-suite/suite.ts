import { describe } from 'vitest';
import type { StateStore } from '../../store/contract.js';
import { accountsCases } from './accounts.js';
import { batchesCases } from './batches.js';
import { campaignsCases } from './campaigns.js';
import { claimsCases } from './claims.js';
import { groupedCases } from './checkpoint-groups.js';
import { outcomesCases } from './checkpoint-outcomes.js';
import { slotsCases } from './checkpoint-slots.js';
import { concurrencyCases } from './concurrency.js';
import { deliveryCases } from './delivery.js';
import { createSuite, type StoreFactory, type StoreInspector, type StoreSuiteOptions } from './harness.js';
import { leasesCases } from './leases.js';
import { maintenanceCases } from './maintenance.js';
import { optOutsCases } from './opt-outs.js';
import { randomizedCases } from './randomized.js';
import { recipientsCases } from './recipients.js';
import { recoveryCases } from './recovery.js';
import { rulesCases } from './rules.js';

export type { StoreFactory, StoreInspector, StoreSuiteOptions } from './harness.js';

/**
 * The conformance suite every StateStore runs. Each case gets a fresh store from `factory` and checks
 * what was persisted through `options.inspect` (the adapter's raw reader), including that every
 * campaign's counters and batch records equal its rows (I2). The `rules` group generates its cases
 * from core's decision tables (`@disparo/core/store`), so a SQL store is checked against the one
 * source of each rule.
 */
export function describeStateStore(name: string, factory: StoreFactory, options: StoreSuiteOptions): void {
  describe(`StateStore conformance: ${name}`, () => {
    const s = createSuite(name, factory, options);
    campaignsCases(s);
    recipientsCases(s);
    claimsCases(s);
    outcomesCases(s);
    slotsCases(s);
    groupedCases(s);
    leasesCases(s);
    recoveryCases(s);
    batchesCases(s);
    accountsCases(s);
    deliveryCases(s);
    optOutsCases(s);
    maintenanceCases(s);
    rulesCases(s);
    randomizedCases(s);
    concurrencyCases(s);
  });
}

/** Kept for callers of the positional form: `describeStateStore(name, factory, inspect, options)`. */
export type StoreInspectorOf = (store: StateStore) => StoreInspector;
