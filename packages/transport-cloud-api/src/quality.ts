/** What the Cloud API tells about a number's quality and limits, and what pacing follows (see health.ts). */

export interface MessagingLimit {
  /** Meta's tier, e.g. `TIER_2K`. */
  tier: string;
  /** Unique contacts per moving 24 h outside a customer window, shared by every number of the portfolio; null = unlimited or unknown. */
  uniqueRecipientsPerDay: number | null;
}

export interface QualitySignal {
  /** `GREEN`, `YELLOW`, `RED`, `NA`/`UNKNOWN`. */
  qualityRating?: string | undefined;
  /** `throughput.level`: `STANDARD` (80 mps) or `HIGH` (up to 1,000 mps). */
  throughputLevel?: string | undefined;
  /** A `phone_number_quality_update` event: `FLAGGED`, `UNFLAGGED`, `DOWNGRADE`, `UPGRADE`, `THROUGHPUT_UPGRADE`, `ONBOARDING`. */
  event?: string | undefined;
  messagingLimit?: MessagingLimit | undefined;
}

/** A `phone_number_quality_update` webhook. */
export interface QualityUpdate extends QualitySignal {
  displayPhoneNumber: string;
  event: string;
  /** `current_limit` / `old_limit` (older per-number tiers) and `max_daily_conversations_per_business`. */
  currentLimit?: string;
  oldLimit?: string;
  /** Epoch ms of the entry (`time`), else arrival. */
  at: number;
}

export interface PacingRecommendation {
  /** `normal`: the configured rate; `slow`: lower it; `pause_marketing`: hold marketing campaigns on this number. */
  action: 'normal' | 'slow' | 'pause_marketing';
  /** Messages per second for this number (for traffic that is not paused). */
  ratePerSecond: number;
  /** The same as a minimum gap between sends, for interval-based pacing. */
  minIntervalMs: number;
  pauseMarketing: boolean;
  /** The portfolio's daily limit of unique recipients, for a daily cap; null = none known. */
  dailyCap: number | null;
  /** The rate was raised because Meta upgraded the number's throughput and the policy allows it. */
  raised: boolean;
  reasons: string[];
}

