/** The join's vocabulary: what a step reports, and what a closed window holds. */
import type { SerializedError } from '../../core/errors.js';
import type { RowOutputs } from '../../models/types.js';

export type StepStatus = 'ok' | 'skipped' | 'error' | 'timeout';

export type StepReport =
  | { readonly status: 'ok'; readonly outputs: RowOutputs; readonly model: string; readonly latencyMs?: number }
  | { readonly status: 'skipped'; readonly reason: string }
  | { readonly status: 'error'; readonly error: SerializedError; readonly model?: string }
  /** The step's own timeout fired (the join's deadline also yields 'timeout', for steps still pending). */
  | { readonly status: 'timeout'; readonly model?: string };

export interface JoinResult {
  readonly eventId: string;
  /** Outputs of the steps that reported ok, by step id. */
  readonly outputs: Readonly<Record<string, RowOutputs>>;
  /** The model version (`name@version`) each step ran, where it ran one. */
  readonly models: Readonly<Record<string, string>>;
  readonly completeness: Readonly<Record<string, StepStatus>>;
  readonly errors: Readonly<Record<string, SerializedError>>;
  /** Whether the join is complete for its mode; an incomplete join goes to the decision's onIncomplete policy. */
  readonly complete: boolean;
  readonly openedAt: number;
  readonly closedAt: number;
}
