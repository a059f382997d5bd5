/**
 * Crash-loop isolation: suspect records (in flight in consecutive process crashes, streams/runtime/
 * crash-journal.ts) run in short-lived child processes (runtime/isolation-child.ts), where whatever kills
 * the process kills only the child. A worker thread would not do: native code that aborts takes every
 * thread of its process with it.
 *
 * The records go in groups of `groupSize`, in offset order, one group at a time. A group runs in the
 * current child, which serves group after group while they succeed (a child costs a model load). A group
 * whose child dies is bisected through the one isolation mechanism (core/isolate.ts via
 * runtime/isolate-block.ts): every later attempt at it, and at each half, runs in a fresh child, so a single
 * record is blamed only when it killed a child that ran nothing else. That record is dead-lettered byte
 * for byte with POISON_SUSPECTED and its provenance; every piece that survives keeps the child's encoded
 * outcomes, exactly what normal processing yields. A child that outlives `childTimeoutMs` on one piece is
 * killed and counts as killed by it (a stuck record must not stall its partition).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Subscription } from 'rxjs';
import type { CompiledPipeline } from '../config/compiled.js';
import type { Clock } from '../core/clock.js';
import { PoisonSuspectedError, WorkerCrashedError, asVerdictError, type VerdictError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import type { StateRead } from '../pipeline/state/types.js';
import { outcomesFromWire, toWire } from './block-wire.js';
import { processIsolated, type BlockPiece } from './isolate-block.js';
import type { ChildReply, ChildRequest } from './isolation-protocol.js';

const CHILD = new URL('./isolation-child.js', import.meta.url);

export interface PoisonIsolationOptions {
  /** What each child builds its engine from. */
  readonly pipeline: CompiledPipeline;
  /** Records per group (`crashJournal.groupSize`). */
  readonly groupSize: number;
  /** How long one piece may run in a child before the child is killed (`crashJournal.childTimeoutMs`). */
  readonly childTimeoutMs: number;
  /** Times the children's pieces. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** pino level of the children's own logs (on this process's stderr), or null for none. */
  readonly logLevel: string | null;
  /** The child's entry; the compiled isolation-child.js beside this module unless given. Not settable from YAML. */
  readonly childFile?: string | URL;
  /** The children's environment. Default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

/** One run of suspect records: their outcomes in order, which of them killed their child alone, and the children used. */
export interface Isolated {
  readonly encoded: EncodedOutcome[];
  readonly poison: readonly InboundRecord[];
  readonly children: number;
}

/** One forked child: starts its engine, then runs one piece at a time. */
class IsolationChild {
  readonly #child: ChildProcess;
  readonly ready: Promise<void>;
  #pending: { readonly id: number; resolve(reply: ChildReply): void; reject(error: VerdictError): void } | undefined;
  #exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined;
  #ids = 0;

  constructor(options: PoisonIsolationOptions) {
    this.#child = fork(options.childFile ?? CHILD, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    let startFailed: ((error: VerdictError) => void) | undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      startFailed = reject;
      this.#child.on('message', (message: ChildReply) => {
        if (message.kind === 'ready') resolve();
        else if (message.kind === 'start-failed') reject(asVerdictError(message.error));
        else if (message.id === this.#pending?.id) this.#pending.resolve(message);
      });
    });
    // Awaited by every run; a start that never comes must not be an unhandled rejection meanwhile.
    this.ready.catch(() => undefined);
    this.#child.on('error', (error) => startFailed?.(new WorkerCrashedError(`isolation child failed: ${error.message}`, { cause: error })));
    this.#child.on('exit', (code, signal) => {
      this.#exit = { code, signal };
      const details = { exitCode: code ?? undefined, signal: signal ?? undefined };
      startFailed?.(new WorkerCrashedError(`isolation child died before its engine started (code ${code}, signal ${signal})`, { details }));
      this.#pending?.reject(new PoisonSuspectedError(`a suspect record killed its isolation process (${signal ?? `exit code ${code}`})`, { details }));
      this.#pending = undefined;
    });
    this.#send({ kind: 'start', pipeline: options.pipeline, logLevel: options.logLevel });
  }

  get dead(): boolean {
    return this.#exit !== undefined;
  }

  /**
   * One piece: its encoded outcomes, or PoisonSuspectedError when the child died (or was killed past
   * `timeoutMs`) under it, WorkerCrashedError when it could not start, the child's own typed error otherwise.
   */
  async run(piece: BlockPiece, bindings: ModelBindings, clock: Clock, timeoutMs: number): Promise<EncodedOutcome[]> {
    try {
      await this.ready;
    } catch (error) {
      throw asVerdictError(error, WorkerCrashedError);
    }
    if (this.dead) throw new PoisonSuspectedError('the isolation process died before the piece was sent', { details: { exitCode: this.#exit?.code ?? undefined, signal: this.#exit?.signal ?? undefined } });
    const id = ++this.#ids;
    let timer: Subscription | undefined;
    const reply = await new Promise<ChildReply>((resolve, reject) => {
      this.#pending = { id, resolve, reject };
      timer = clock.schedule(() => this.kill(), timeoutMs);
      const { block } = toWire(piece.records, undefined, piece.states);
      this.#send({ kind: 'piece', id, block, bindings });
    }).finally(() => {
      timer?.unsubscribe();
      this.#pending = undefined;
    });
    if (reply.kind !== 'piece') throw new WorkerCrashedError('isolation child answered out of turn');
    if (!reply.ok) throw asVerdictError(reply.error);
    return outcomesFromWire(reply.reply);
  }

  kill(): void {
    if (!this.dead) this.#child.kill('SIGKILL');
  }

  #send(request: ChildRequest): void {
    // A child that died meanwhile is reported by its exit event.
    this.#child.send(request, (error) => { if (error !== null) this.kill(); });
  }
}

export class PoisonIsolation {
  readonly #options: PoisonIsolationOptions;
  /** The child that serves group after group while they succeed. */
  #shared: IsolationChild | undefined;
  /** Runs one at a time: isolation is slow and rare, and two would double the children. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Whether the shared child was counted in an isolation's `children` (a prewarmed one is counted at first use). */
  #sharedCounted = false;
  #closed = false;

  constructor(options: PoisonIsolationOptions) {
    this.#options = options;
  }

  /** Starts the shared child now (its engine loads while the stream starts), when isolation is known to come. */
  prewarm(): void {
    if (this.#closed) return;
    this.#child(false);
    this.#sharedCounted = false;
  }

  /**
   * Runs `records` (contiguous, of one partition, with their StateReads) in isolation, on `bindings`. Never
   * rejects: every record gets an encoded outcome, a decision or a dead letter.
   */
  isolate(records: readonly InboundRecord[], states: readonly (StateRead | undefined)[] | undefined, bindings: ModelBindings): Promise<Isolated> {
    const run = this.#queue.then(() => this.#isolate(records, states, bindings));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #isolate(records: readonly InboundRecord[], states: readonly (StateRead | undefined)[] | undefined, bindings: ModelBindings): Promise<Isolated> {
    const { groupSize, pipeline } = this.#options;
    const encoded: EncodedOutcome[] = [];
    const poison: InboundRecord[] = [];
    let children = 0;
    for (let at = 0; at < records.length; at += groupSize) {
      const group = records.slice(at, at + groupSize);
      let attempts = 0;
      const outcomes = await processIsolated({ records: group, states: states?.slice(at, at + groupSize) }, {
        run: (piece) => {
          // The group's first attempt may share a child with earlier groups; any later attempt (after its
          // child died) and every half runs in a fresh one, so a crash is only ever blamed on its own piece.
          const fresh = attempts++ > 0 || piece.records.length === 1;
          const child = this.#child(fresh);
          if (child.started) children++;
          return this.#runIn(child.child, piece, bindings, fresh);
        },
        crash: PoisonSuspectedError,
        deadLetterTopic: pipeline.output.deadLetter,
        pipeline: pipeline.name,
      });
      outcomes.forEach((outcome, i) => {
        if (outcome.label === PoisonSuspectedError.code) poison.push(group[i]!);
        encoded.push(outcome);
      });
    }
    return { encoded, poison, children };
  }

  /** The shared child (started if there is none alive), or a fresh one. */
  #child(fresh: boolean): { child: IsolationChild; started: boolean } {
    if (!fresh && this.#shared !== undefined && !this.#shared.dead) {
      const started = !this.#sharedCounted;
      this.#sharedCounted = true;
      return { child: this.#shared, started };
    }
    const child = new IsolationChild(this.#options);
    if (!fresh) {
      this.#shared = child;
      this.#sharedCounted = true;
    }
    return { child, started: true };
  }

  async #runIn(child: IsolationChild, piece: BlockPiece, bindings: ModelBindings, fresh: boolean): Promise<EncodedOutcome[]> {
    try {
      const encoded = await child.run(piece, bindings, this.#options.clock, this.#options.childTimeoutMs);
      // A fresh child that survived is healthy: it serves the next groups rather than starting another.
      if (fresh && (this.#shared === undefined || this.#shared.dead) && !this.#closed) {
        this.#shared = child;
        this.#sharedCounted = true;
      } else if (fresh) {
        child.kill();
      }
      return encoded;
    } catch (error) {
      if (fresh) child.kill();
      throw error;
    }
  }

  /** Kills the children (after the isolation in progress, if any). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    this.#shared?.kill();
    this.#shared = undefined;
  }
}
