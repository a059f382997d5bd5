/** The bench report's shape: what `verdict bench` writes as JSON, and what the chart and the Markdown read. */
import type { CpuPerEvent } from './cpu.js';
import type { GitInfo, MachineInfo } from './machine.js';
import type { OverloadResult } from './overload.js';
import type { BacklogPrediction } from './retention.js';
import type { LevelResult } from './run-level.js';
import type { FailureReason, LevelJudgement } from './saturation.js';
import type { SoakResult } from './soak.js';
import type { TargetName } from './targets/target.js';

export interface ReportedLevel extends LevelResult {
  readonly judgement: LevelJudgement;
  /** Why this level ran: a step of the search, a fixed rate, or the check at half the saturation rate. */
  readonly role: 'search' | 'fixed' | 'half-saturation';
}

export interface TargetReport {
  readonly name: TargetName;
  readonly transport: 'embedded' | 'kafka';
  readonly description: string;
  readonly status: 'ok' | 'skipped' | 'failed';
  /** Why a target was skipped or failed. */
  readonly note: string | null;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly levels: readonly ReportedLevel[];
  /** The highest sustainable offered rate among the levels run (found by the search when it ran). */
  readonly maxSustainableRate: number | null;
  readonly firstFailingRate: number | null;
  readonly limitedBy: readonly (FailureReason | 'max-rate' | 'max-levels')[];
  readonly halfSaturation: ReportedLevel | null;
  /** With `--repeat`: which run (1-based) this report is of; absent in a single run. */
  readonly run?: number;
}

/** `--repeat N`: each target run N times, interleaved; medians over the runs. */
export interface RepeatsReport {
  readonly runs: number;
  readonly targets: ReadonlyArray<{
    readonly name: TargetName;
    /** Per run, in run order; null where the run found none (or the target was skipped or failed). */
    readonly maxSustainableRates: ReadonlyArray<number | null>;
    /** Median of the runs' rates, a run without one counting as 0 (it sustained nothing); null if none has one. */
    readonly medianMaxSustainableRate: number | null;
    /** Medians over the runs with a measured figure of the CPU per event at each run's highest sustainable level. */
    readonly medianCpuPerEventAtMax: CpuPerEvent;
  }>;
}

export interface BenchConfigReport {
  readonly command: string;
  readonly pipeline: { readonly path: string; readonly name: string; readonly steps: readonly string[] };
  readonly mode: 'saturate' | 'rates';
  readonly rates: readonly number[] | null;
  readonly saturation: Readonly<Record<string, number>> | null;
  readonly durationS: number;
  readonly warmupS: number;
  readonly windowS: number;
  readonly generatorTickMs: { readonly embedded: number; readonly kafka: number };
  readonly burst: { readonly factor: number; readonly everyMs: number; readonly lengthMs: number } | null;
  readonly sloP99Ms: number;
  readonly partitions: number;
  /** The overload target's partitions, when set apart from `partitions`. */
  readonly overloadPartitions: number | null;
  readonly seed: number;
  readonly poolSize: number;
  readonly poisonRate: number;
  readonly kafka: string;
  readonly targets: readonly TargetName[];
  /** Runs of every target (`--repeat`); 1 without it. */
  readonly repeat?: number;
}

export interface BenchReport {
  readonly tool: 'verdict bench';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  readonly git: GitInfo;
  readonly notes: readonly string[];
  readonly config: BenchConfigReport;
  readonly targets: readonly TargetReport[];
  /** `--repeat`: the runs' medians (ratios then use the median rates). */
  readonly repeats?: RepeatsReport;
  /** Ratios of max sustainable rates; null when either side has none. */
  readonly ratios: Readonly<Record<string, number | null>>;
  readonly overload: OverloadReport | null;
  /** `--soak`: the steady run and its slopes; absent when none ran. */
  readonly soak?: SoakReport;
  /** Load averages when the run ended (the machine's, at the start, are in `machine`). */
  readonly loadAverageAtEnd: readonly number[];
}

export interface OverloadReport extends OverloadResult {
  readonly target: TargetName;
  /** How the rate was chosen (see harness.ts overloadRate). */
  readonly rateBasis: string;
  /** Whose memory was sampled. */
  readonly rssOf: string;
  readonly partitions: number;
  readonly tickMs: number;
  /** Mean bytes of one input record in a record batch. */
  readonly recordBytes: number;
  /** The backlog forecast at the consumption rate the levels measured, and if nothing were consumed. */
  readonly prediction: BacklogPrediction | null;
  readonly worstCase: BacklogPrediction | null;
  readonly predictionNote: string;
}

export interface SoakReport extends SoakResult {
  readonly target: TargetName;
  /** How the rate was chosen: half the saturation rate found here, or given. */
  readonly rateSource: string;
  readonly partitions: number;
  readonly tickMs: number;
}
