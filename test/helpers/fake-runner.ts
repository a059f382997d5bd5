/** A fake model runner and a model actor on virtual time, for the actor's unit tests. */
import { VirtualTimeScheduler } from 'rxjs';
import { ModelExecutionError, type VerdictError } from '../../core/errors.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import { ModelActor, type ModelActorOptions } from '../../actors/model-actor.js';
import type { BatchResult, BatchTask, ModelRunner } from '../../models/runner.js';
import type { ResolvedModel } from '../../models/types.js';

export const model: ResolvedModel = {
  name: 'fake', version: 1, ref: 'fake@1', path: '/models/fake/1/model.onnx',
  manifest: {
    name: 'fake', version: 1, description: 'sum and double', createdAt: '2024-01-01T00:00:00Z', sha256: 'abc',
    inputs: [{ name: 'x', type: 'float32', shape: ['N', 2] }],
    outputs: [{ name: 'sum', type: 'float32', shape: ['N', 1] }, { name: 'double', type: 'float32', shape: ['N', 2] }],
    metrics: {},
  },
};

export const POISON = -1;

/**
 * Computes sum and double of each row. Fails any batch holding a POISON row, throws queued errors first,
 * and in `hold` mode keeps each batch running until the test releases it.
 */
export class FakeRunner implements ModelRunner {
  readonly calls: number[] = [];
  readonly failNext: VerdictError[] = [];
  hold = false;
  readonly held: (() => void)[] = [];

  async run(task: BatchTask): Promise<BatchResult> {
    const input = task.inputs[0]!;
    const n = input.dims[0]!;
    this.calls.push(n);
    const failure = this.failNext.shift();
    if (failure !== undefined) throw failure;
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    const x = input.data as Float32Array;
    const sum = new Float32Array(n);
    const double = new Float32Array(n * 2);
    for (let r = 0; r < n; r++) {
      if (x[r * 2] === POISON) throw new ModelExecutionError('poison row');
      sum[r] = x[r * 2]! + x[r * 2 + 1]!;
      double[r * 2] = x[r * 2]! * 2;
      double[r * 2 + 1] = x[r * 2 + 1]! * 2;
    }
    return {
      outputs: [
        { name: 'sum', type: 'float32', dims: [n, 1], data: sum },
        { name: 'double', type: 'float32', dims: [n, 2], data: double },
      ],
    };
  }

  async close(): Promise<void> {}
}

export function setup(options: Partial<ModelActorOptions> = {}) {
  const scheduler = new VirtualTimeScheduler();
  const runner = new FakeRunner();
  const metrics = createMetrics();
  const actor = new ModelActor({ model, runner, scheduler, metrics, ...options });
  /** Runs the timers due up to virtual time `t`. */
  const advanceTo = (t: number) => {
    scheduler.maxFrames = t;
    scheduler.flush();
  };
  return { scheduler, runner, metrics, actor, advanceTo };
}

export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function errorCount(metrics: Metrics, code: string): Promise<number> {
  const { values } = await metrics.errors.get();
  return values.find((v) => v.labels['component'] === 'model_actor' && v.labels['code'] === code)?.value ?? 0;
}
