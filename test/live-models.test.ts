/**
 * LiveModels' logic on virtual time, against a real registry directory (a temp copy) and fake threads that
 * record what they are asked to load and unload: when a moved alias is noticed, the order verify → load
 * everywhere → activate, unloading only once no block in flight uses the old version, refusals that leave
 * the old version serving and are not retried until the alias moves again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstValueFrom, filter, type Observable } from 'rxjs';
import { InternalError, ModelIntegrityError, ModelSignatureError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { ModelRegistry } from '../models/registry.js';
import type { ResolvedModel } from '../models/types.js';
import { compiledBindings } from '../pipeline/route/bindings.js';
import { LiveModels, type FollowMode, type ModelEvent, type ModelThreads } from '../runtime/live-models.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';
import { compiled, samplePipeline } from './helpers/pipelines.js';
import { copyRegistry, shippedModel, writeAlias, writeVersionByHand } from './helpers/registry-copy.js';

/** Threads that load and unload on request, recording each call in order; `failPrepare` makes loads fail. */
class RecordingThreads implements ModelThreads {
  readonly calls: string[] = [];
  failPrepare: Error | undefined;
  prepare(step: number, model: ResolvedModel): Promise<void> {
    this.calls.push(`prepare ${step} ${model.ref}`);
    return this.failPrepare === undefined ? Promise.resolve() : Promise.reject(this.failPrepare);
  }
  retire(step: number, model: ResolvedModel): Promise<void> {
    this.calls.push(`retire ${step} ${model.ref}`);
    return Promise.resolve();
  }
}

async function setup(aliasPollMs = 1000, follow: FollowMode = 'timer') {
  const root = await copyRegistry();
  const pipeline = await compiled(await samplePipeline((f) => ({ ...f, models: { ...f.models, registry: root, aliasPollMs } })), root);
  const scheduler = new ManualScheduler();
  const threads = new RecordingThreads();
  const metrics = createMetrics();
  const registry = new ModelRegistry(root);
  const live = new LiveModels({ pipeline, initial: compiledBindings(pipeline), registry, threads, scheduler, metrics, follow });
  return { root, pipeline, scheduler, threads, metrics, registry, live };
}

const next = (events$: Observable<ModelEvent>, event: ModelEvent['event']): Promise<ModelEvent> =>
  firstValueFrom(events$.pipe(filter((e) => e.event === event)));

async function swaps(metrics: ReturnType<typeof createMetrics>, event: string): Promise<number> {
  const values = (await metrics.modelSwaps.get()).values.filter((v) => v.labels['event'] === event);
  return values.reduce((a, v) => a + v.value, 0);
}

describe('live models', () => {
  test('a promoted alias is noticed at the next poll, loaded everywhere, then activated for new blocks', async () => {
    const { scheduler, threads, metrics, registry, live } = await setup();
    live.start();
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@3');
    // refresh() checks now; then the timer's poll has to notice the rollback on its own.
    await registry.promote('fraud_gbt', 4);
    await live.refresh();
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@4');
    assert.equal(live.bindings.generation, 1);
    await registry.rollback('fraud_gbt');
    scheduler.advance(999);
    await new Promise((r) => setImmediate(r));
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@4', 'not before aliasPollMs');
    const loaded = next(live.events$, 'loaded');
    scheduler.advance(1);
    const event = await loaded;
    assert.deepEqual(event, { event: 'loaded', step: 'gbt', role: 'primary', from: 'fraud_gbt@4', to: 'fraud_gbt@3', generation: 2 });
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@3');
    // Loaded everywhere before activation; the version left behind unloaded once idle (no block in flight).
    assert.deepEqual(threads.calls.slice(0, 2), ['prepare 0 fraud_gbt@4', 'retire 0 fraud_gbt@3']);
    await live.refresh();
    assert.ok(threads.calls.includes('retire 0 fraud_gbt@4'), threads.calls.join('; '));
    assert.equal(await swaps(metrics, 'loaded'), 2);
    assert.equal(await swaps(metrics, 'unloaded'), 2);
    const info = (await metrics.modelInfo.get()).values.filter((v) => v.labels['step'] === 'gbt');
    assert.deepEqual(info.map((v) => [v.labels['model'], v.labels['version'], v.labels['role'], v.value]), [['fraud_gbt', '3', 'primary', 1]]);
    const status = live.status();
    assert.equal(status.generation, 2);
    assert.deepEqual(status.steps.find((s) => s.step === 'gbt')?.roles, [{ role: 'primary', id: 'fraud_gbt@production', ref: 'fraud_gbt@3' }]);
    await live.close();
  });

  test('an old version is unloaded only when the last block in flight on it is done', async () => {
    const { threads, registry, live } = await setup();
    const early = live.lease();
    const early2 = live.lease();
    await registry.promote('fraud_gbt', 4);
    const [result] = await live.refresh();
    assert.equal(result?.ok, true);
    assert.deepEqual(live.inflight, new Map([[0, 2]]));
    const late = live.lease();
    assert.equal(late.bindings.steps[0]!.primary.ref, 'fraud_gbt@4', 'new blocks run the new version');
    assert.equal(early.bindings.steps[0]!.primary.ref, 'fraud_gbt@3', 'blocks in flight keep theirs');
    await live.refresh();
    assert.deepEqual(threads.calls, ['prepare 0 fraud_gbt@4'], 'fraud_gbt@3 is still in flight');
    early.release();
    early.release(); // a second release of one lease changes nothing
    await live.refresh();
    assert.deepEqual(threads.calls, ['prepare 0 fraud_gbt@4']);
    const unloaded = next(live.events$, 'unloaded');
    early2.release();
    assert.deepEqual(await unloaded, { event: 'unloaded', step: 'gbt', role: 'primary', ref: 'fraud_gbt@3' });
    assert.deepEqual(threads.calls, ['prepare 0 fraud_gbt@4', 'retire 0 fraud_gbt@3']);
    late.release();
    await live.refresh();
    assert.deepEqual(threads.calls, ['prepare 0 fraud_gbt@4', 'retire 0 fraud_gbt@3'], 'the current version stays loaded');
    await live.close();
  });

  test('a version that fails to load is refused, the old one keeps serving, and it is not retried until the alias moves', async () => {
    const { threads, metrics, registry, live } = await setup();
    threads.failPrepare = new Error('worker said no');
    await registry.promote('fraud_gbt', 4);
    const [result] = await live.refresh();
    assert.equal(result?.ok, false);
    assert.equal(result?.to, 'fraud_gbt@4');
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@3');
    assert.equal(live.bindings.generation, 0);
    // The threads that loaded it were told to unload it again.
    assert.deepEqual(threads.calls, ['prepare 0 fraud_gbt@4', 'retire 0 fraud_gbt@4']);
    const refused = live.status().steps[0]!.roles[0]!.refused;
    assert.equal(refused?.ref, 'fraud_gbt@4');
    assert.equal(refused?.code, InternalError.code);
    threads.failPrepare = undefined;
    assert.deepEqual(await live.refresh(), [], 'not retried while the alias still names it');
    assert.equal(threads.calls.length, 2);
    assert.equal(await swaps(metrics, 'failed'), 1);
    // The alias moves away and back: a new attempt, which now succeeds.
    await registry.rollback('fraud_gbt');
    assert.deepEqual(await live.refresh(), []);
    assert.equal(live.status().steps[0]!.roles[0]!.refused, undefined, 'the refusal is cleared once the alias names the version in force');
    await registry.promote('fraud_gbt', 4);
    const [retried] = await live.refresh();
    assert.equal(retried?.ok, true);
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@4');
    await live.close();
  });

  test('wrong sha256, a manifest that lies about the model, and an incompatible signature are each refused with their code', async () => {
    const { root, threads, metrics, live } = await setup();
    await writeVersionByHand(root, 'fraud_gbt', 5, { modelFile: shippedModel('fraud_gbt', 4), manifestOf: { name: 'fraud_gbt', version: 4 }, sha256: 'wrong' });
    // The autoencoder's file under the gbt's manifest: the manifest alone is compatible with the step.
    await writeVersionByHand(root, 'fraud_gbt', 6, { modelFile: shippedModel('txn_autoencoder', 2), manifestOf: { name: 'fraud_gbt', version: 4 }, sha256: 'honest' });
    // The autoencoder registered honestly as a gbt version: its manifest says output "score", not "fraud_probability".
    await new ModelRegistry(root).register('fraud_gbt', shippedModel('txn_autoencoder', 2), { version: 7 });
    const expected: Array<[number, string]> = [[5, ModelIntegrityError.code], [6, ModelSignatureError.code], [7, ModelSignatureError.code]];
    for (const [version, code] of expected) {
      await writeAlias(root, 'fraud_gbt', 'production', version);
      const [result] = await live.refresh();
      assert.equal(result?.ok, false, `fraud_gbt@${version}`);
      assert.equal(result?.error?.code, code, `fraud_gbt@${version}: ${result?.error?.message}`);
      assert.equal(live.status().steps[0]!.roles[0]!.refused?.code, code);
      assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@3');
      // v6's manifest is the step's own: only the model file's real signature gives it away.
      if (version === 6) assert.match(result?.error?.message ?? '', /the manifest does not describe the model/);
    }
    assert.match(live.status().steps[0]!.roles[0]!.refused?.message ?? '', /has no output "fraud_probability"/);
    assert.deepEqual(threads.calls, [], 'nothing that failed a check was loaded anywhere');
    assert.equal(await swaps(metrics, 'failed'), 3);
    await live.close();
  });

  test('canary and shadow roles follow their own aliases, each swapped and reported on its own', async () => {
    const root = await copyRegistry();
    const registry = new ModelRegistry(root);
    await registry.promote('fraud_gbt', 4, 'shadow');
    const pipeline = await compiled(await samplePipeline((f) => ({
      ...f,
      models: { ...f.models, registry: root },
      steps: f.steps.map((st) => (st.id === 'gbt' ? { ...st, canary: { model: 'fraud_gbt@canary', percent: 10 }, shadow: 'fraud_gbt@shadow' } : st)),
    })), root);
    const threads = new RecordingThreads();
    const metrics = createMetrics();
    const live = new LiveModels({ pipeline, initial: compiledBindings(pipeline), registry, threads, scheduler: new ManualScheduler(), metrics });
    const roles = () => live.status().steps[0]!.roles.map((r) => [r.role, r.id, r.ref, r.percent]);
    assert.deepEqual(roles(), [
      ['primary', 'fraud_gbt@production', 'fraud_gbt@3', undefined], ['canary', 'fraud_gbt@canary', 'fraud_gbt@4', 10], ['shadow', 'fraud_gbt@shadow', 'fraud_gbt@4', undefined],
    ]);
    await registry.promote('fraud_gbt', 3, 'shadow');
    const [shadow] = await live.refresh();
    assert.deepEqual(shadow && [shadow.step, shadow.role, shadow.from, shadow.to, shadow.ok], ['gbt', 'shadow', 'fraud_gbt@4', 'fraud_gbt@3', true]);
    assert.deepEqual(roles(), [
      ['primary', 'fraud_gbt@production', 'fraud_gbt@3', undefined], ['canary', 'fraud_gbt@canary', 'fraud_gbt@4', 10], ['shadow', 'fraud_gbt@shadow', 'fraud_gbt@3', undefined],
    ]);
    assert.equal(live.bindings.steps[0]!.canary?.percent, 10);
    // fraud_gbt@3 was loaded for the step already (its primary), and fraud_gbt@4 is still the canary.
    await live.refresh();
    assert.deepEqual(threads.calls, []);
    const info = (await metrics.modelInfo.get()).values.filter((v) => v.labels['role'] === 'shadow').map((v) => v.labels['version']);
    assert.deepEqual(info, ['3']);
    await registry.promote('fraud_gbt', 3, 'canary');
    await live.refresh();
    await live.refresh();
    assert.deepEqual(threads.calls, ['retire 0 fraud_gbt@4'], 'unloaded once no role of the step uses it');
    await live.close();
  });

  test('aliasPollMs 0 fixes the versions: no timer, no swap', async () => {
    const { scheduler, registry, live } = await setup(0);
    live.start();
    assert.equal(scheduler.pendingCount, 0);
    await registry.promote('fraud_gbt', 4);
    scheduler.advance(60_000);
    assert.deepEqual(await live.refresh(), [], 'nor does refresh() move them');
    assert.equal(live.bindings.steps[0]!.primary.ref, 'fraud_gbt@3');
    assert.equal(live.follows, false);
    assert.equal(live.status().aliasPollMs, 0);
    await live.close();
  });

  test('on-use: no timer; a block that starts checks in the background, at most once per aliasPollMs', async () => {
    const { pipeline, scheduler, threads, registry } = await setup();
    let checks = 0;
    const counting = { inspect: (id: string) => { checks++; return registry.inspect(id); }, resolve: (id: string) => registry.resolve(id) };
    const live = new LiveModels({ pipeline, initial: compiledBindings(pipeline), registry: counting, threads, scheduler, follow: 'on-use' });
    const perCheck = live.status().steps.reduce((n, s) => n + s.roles.length, 0);
    live.start();
    assert.equal(scheduler.pendingCount, 0, 'nothing scheduled');
    await registry.promote('fraud_gbt', 4);
    const loaded = next(live.events$, 'loaded');
    const first = live.lease();
    assert.equal(first.bindings.steps[0]!.primary.ref, 'fraud_gbt@3', 'the block that started the check keeps the versions in force');
    await loaded;
    assert.equal(live.lease().bindings.steps[0]!.primary.ref, 'fraud_gbt@4');
    await live.refresh();
    assert.equal(checks, 2 * perCheck, 'one check on use, one refresh()');
    scheduler.advance(999);
    live.lease();
    await live.refresh();
    assert.equal(checks, 3 * perCheck, 'no check on use before aliasPollMs has passed');
    scheduler.advance(1);
    live.lease();
    await live.refresh();
    assert.equal(checks, 5 * perCheck, 'a check on use once it has');
    first.release();
    await live.close();
  });

  test('close stops the polling', async () => {
    const { scheduler, live } = await setup();
    live.start();
    assert.equal(scheduler.pendingCount, 1);
    await live.close();
    assert.equal(scheduler.pendingCount, 0);
  });
});
