/**
 * What the admin API acts on, and the JSON shapes it answers with. The HTTP layer (admin-handler.ts) knows
 * only this interface; the daemon implements it (daemon-admin.ts), and tests can too.
 */
import type { LifecycleState } from '../../core/lifecycle.js';
import type { SerializedError } from '../../core/errors.js';
import type { AliasChange, ModelSummary } from '../../models/registry.js';
import type { FetchWait } from '../../streams/kafka/fetch-wait.js';
import type { CrashGuardStatus } from '../crash-guard.js';

/** One model role of a step, in force now. */
export interface RoleInUse {
  readonly role: 'primary' | 'canary' | 'shadow';
  /** The model id as configured (`fraud_gbt@prod`). */
  readonly id: string;
  /** The version in force (`fraud_gbt@3`). */
  readonly ref: string;
  /** A canary's share of events, percent. */
  readonly percent?: number;
  /** The last version refused for this role (it failed to load or validate), if any. */
  readonly refused?: { readonly ref: string; readonly code: string; readonly message: string; readonly at: string };
}

/** The versions each step uses: the shape of `engine.models.status()` that the admin API relies on. */
export interface VersionsInUse {
  readonly steps: ReadonlyArray<{ readonly step: string; readonly roles: readonly RoleInUse[] }>;
}

/** A circuit breaker's state across the threads that run the model version (`verdict_model_circuit_state`). */
export interface BreakerState {
  /** `name@version`. */
  readonly model: string;
  /** The worst of the threads' states: open, then half-open, then closed. */
  readonly state: 'closed' | 'open' | 'half-open';
  /** How many threads' breakers are in each state. */
  readonly threads: { readonly closed: number; readonly open: number; readonly halfOpen: number };
}

/** One assigned partition. */
export interface PartitionStatus {
  readonly topic: string;
  readonly partition: number;
  /** Records the group has yet to commit past, at the last lag sample; null before the first sample. */
  readonly lag: number | null;
  /** Paused by backpressure (too much read and not yet acknowledged). */
  readonly throttled: boolean;
  /** The offset the partition halted at (a record nothing could be written for), or null. */
  readonly haltedAt: number | null;
}

/** GET /admin/status. */
export interface AdminStatus {
  readonly lifecycle: LifecycleState;
  /** The operator's pause (POST /admin/pause) is in force. */
  readonly paused: boolean;
  readonly assignment: readonly PartitionStatus[];
  /** How long ago the lag figures were sampled, ms (the daemon samples every 5 s); null before the first sample. */
  readonly lagAgeMs: number | null;
  readonly versions: VersionsInUse;
  readonly breakers: readonly BreakerState[];
  /** The crash journal (README "When the process itself crashes"): consecutive crashes before this run, suspect ranges. Absent when off. */
  readonly crashJournal?: CrashGuardStatus;
  /**
   * The consumer's fetch wait (`kafka.maxWaitTimeInMs`, ms) and where it came from: `configured`, or chosen
   * from the broker (`broker`, `mock-broker`; `unknown` when it could not be asked). Absent until chosen.
   */
  readonly fetchWait?: FetchWait;
}

/** GET /admin/models: the registry's models, each with the steps and roles that use it. */
export interface AdminModels {
  readonly models: ReadonlyArray<ModelSummary & { readonly inUse: ReadonlyArray<{ readonly step: string; readonly role: RoleInUse['role']; readonly ref: string }> }>;
}

/** One step role's swap after an alias moved (`engine.models.refresh()`). */
export interface SwapOutcome {
  readonly step: string;
  readonly role: RoleInUse['role'];
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  readonly error?: SerializedError;
  readonly ms: number;
}

/** POST /admin/models/<name>/promote and /rollback: the alias move, and the swaps it caused (null: the daemon does not follow aliases live). */
export interface AdminModelChange {
  readonly change: AliasChange;
  readonly swaps: readonly SwapOutcome[] | null;
}

/** POST /admin/pause and /admin/resume. */
export interface AdminConsumption {
  readonly paused: boolean;
  /** False when the request changed nothing (already paused, or not paused). */
  readonly changed: boolean;
  /** Partitions assigned now. */
  readonly partitions: number;
}

/** GET /admin/config: the effective daemon config, secrets redacted. */
export interface AdminConfig {
  /** The pipeline file, absolute. */
  readonly pipeline: string;
  /** The validated config, every default applied, each secret replaced by `[redacted]`. */
  readonly config: unknown;
  /** Dotted paths of the values redacted. */
  readonly redacted: readonly string[];
  /** Config paths set from `VERDICT_*` environment variables. */
  readonly overridden: readonly string[];
}

/**
 * The admin API's view of a daemon. Methods reject with typed errors, which the handler turns into HTTP
 * statuses (admin-errors.ts): MODEL_NOT_FOUND (404), ADMIN_BAD_REQUEST, CONFIG_INVALID and REGISTRY_PATH_INVALID
 * (400), ADMIN_CONFLICT, MODEL_INTEGRITY, MODEL_SIGNATURE_MISMATCH and MODEL_FILE_TOO_LARGE (409).
 */
export interface AdminTarget {
  status(): Promise<AdminStatus>;
  models(): Promise<AdminModels>;
  /** Points `alias` (default `production`) of model `name` at `version`, then swaps what uses it. */
  promote(name: string, version: number, alias: string | undefined): Promise<AdminModelChange>;
  /** Moves `alias` (default `production`) back to where it was before its latest move, then swaps what uses it. */
  rollback(name: string, alias: string | undefined): Promise<AdminModelChange>;
  /** The operator's pause of consumption; ADMIN_CONFLICT unless the daemon is running. */
  pause(): AdminConsumption;
  /** Ends the operator's pause; ADMIN_CONFLICT unless the daemon is running. */
  resume(): AdminConsumption;
  config(): AdminConfig;
}
