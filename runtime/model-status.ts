/**
 * What the live models (live-models.ts) report: the versions in force by step and role, refusals, swap
 * results and events. Plain data: the admin API serves it as JSON.
 */
import type { SerializedError } from '../core/errors.js';

/** The part a version plays in a step. */
export type ModelRole = 'primary' | 'canary' | 'shadow';

/** A version that was refused for a step role: it is not tried again until the alias moves again. */
export interface Refusal {
  /** `name@version` refused, or the configured id when it did not resolve to a version. */
  readonly ref: string;
  readonly code: string;
  readonly message: string;
  /** ISO time of the refusal. */
  readonly at: string;
}

export interface RoleStatus {
  readonly role: ModelRole;
  /** The model id as configured (`fraud_gbt@production`). */
  readonly id: string;
  /** The version in force for new blocks (`name@version`). */
  readonly ref: string;
  /** The canary's share of event keys. */
  readonly percent?: number;
  /** The last version refused for this role, while the alias still names it. */
  readonly refused?: Refusal;
}

/** `LiveModels.status()`: the versions new blocks run, by step and role. */
export interface ModelsStatus {
  readonly generation: number;
  /** 0: versions fixed at start-up. */
  readonly aliasPollMs: number;
  readonly steps: readonly { readonly step: string; readonly roles: readonly RoleStatus[] }[];
}

/** One attempted swap: `ms` from its start to activation (or refusal), on the engine's clock, rounded to microseconds. */
export interface SwapResult {
  readonly step: string;
  readonly role: ModelRole;
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  readonly error?: SerializedError;
  readonly ms: number;
}

/** What `events$` reports, for logs and tests. */
export type ModelEvent =
  | { readonly event: 'loaded'; readonly step: string; readonly role: ModelRole; readonly from: string; readonly to: string; readonly generation: number }
  | { readonly event: 'failed'; readonly step: string; readonly role: ModelRole; readonly from: string; readonly to: string; readonly error: SerializedError }
  | { readonly event: 'unloaded'; readonly step: string; readonly role: ModelRole; readonly ref: string };
