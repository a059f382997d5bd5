/**
 * Compiles a parsed pipeline file against the model registry: resolves every model id, builds the step
 * graph, and checks it before anything runs. Every error names the config path it is about
 * (`steps[2].inputs.features`), so a user can fix the file without reading code.
 */
import { cpus } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { celLimitsOf, compileExpression, type CelLimits, type ExpressionKind } from './rules.js';
import {
  ConfigError, ModelFileTooLargeError, RegistryPathError, TooManyFeaturesError, TooManyRulesError, TooManyStepsError, isVerdictError,
} from '../core/errors.js';
import type { ResolvedModel, TensorSpec } from '../models/types.js';
import { checkCelEventRefs, checkInputContract } from './input-contract.js';
import { featureColumns } from './feature-columns.js';
import { compileState } from './compile-state.js';
import { checkCelStateRefs, checkStateFeatures } from './state-refs.js';
import type { CompiledInput, CompiledPipeline, CompiledStep, InputSource } from './compiled.js';
import { mappingProblem, type TypedSource } from './input-types.js';
import { placementOf } from './placement.js';
import { batchPolicySchema, type PipelineFile, type StepSpec } from './pipeline-schema.js';
import { stepIncompatibility } from './step-compat.js';

export interface ModelResolver {
  resolve(id: string): Promise<ResolvedModel>;
}

const STEP_REF = /\bsteps\.([A-Za-z_][A-Za-z0-9_]*)/g;

/** Values per row of a tensor: the product of every dimension after the batch dimension. */
export function rowWidth(spec: TensorSpec, path: string): number {
  let width = 1;
  for (const dim of spec.shape.slice(1)) {
    if (typeof dim !== 'number') throw new ConfigError(`${path}: ${spec.name} has a dynamic non-batch dimension, which Verdict cannot feed`);
    width *= dim;
  }
  return width;
}

/** Parses, type-checks and bounds a CEL expression; the decision actor and the router compile it again for use. */
function checkCel(source: string, path: string, kind: ExpressionKind, limits: CelLimits): void {
  compileExpression(source, path, kind, limits);
}

/**
 * The pipeline's size against its `limits`, before any model is resolved: steps (CONFIG_TOO_MANY_STEPS),
 * feature columns of all feature sets together (CONFIG_TOO_MANY_FEATURES), and decision rules with the
 * fallback rules (CONFIG_TOO_MANY_RULES). Each error names the config path and the limit.
 */
function checkSize(file: PipelineFile, featureWidths: ReadonlyMap<string, number>): void {
  const { maxSteps, maxFeatures, maxRules } = file.limits;
  if (file.steps.length > maxSteps) {
    throw new TooManyStepsError(`steps: ${file.steps.length} steps, above limits.maxSteps (${maxSteps})`, {
      details: { path: 'steps', count: file.steps.length, limit: maxSteps },
    });
  }
  const columns = [...featureWidths.values()].reduce((a, b) => a + b, 0);
  if (columns > maxFeatures) {
    throw new TooManyFeaturesError(`input.features: ${columns} feature columns, above limits.maxFeatures (${maxFeatures})`, {
      details: { path: 'input.features', count: columns, limit: maxFeatures },
    });
  }
  const { onIncomplete } = file.decision;
  const rules = file.decision.rules.length + (onIncomplete.policy === 'fallback' ? onIncomplete.rules.length : 0);
  if (rules > maxRules) {
    const path = onIncomplete.policy === 'fallback' ? 'decision.rules, decision.onIncomplete.rules' : 'decision.rules';
    throw new TooManyRulesError(`${path}: ${rules} rules, above limits.maxRules (${maxRules})`, {
      details: { path, count: rules, limit: maxRules },
    });
  }
}

function stepRefs(source: string): string[] {
  return [...source.matchAll(STEP_REF)].map((m) => m[1] ?? '');
}

const STEP_OUTPUT_REF = /(?<![\w.])steps\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)/g;
const STRING_LITERAL = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g;

/** `steps.<id>.<output>` in CEL must name an output of the step's model: a typo fails on every event it runs for. */
function checkStepOutputRefs(source: string, path: string, modelOf: ReadonlyMap<string, ResolvedModel>): void {
  for (const m of source.replace(STRING_LITERAL, '""').matchAll(STEP_OUTPUT_REF)) {
    const [, step = '', output = ''] = m;
    const model = modelOf.get(step);
    if (model !== undefined && !model.manifest.outputs.some((o) => o.name === output)) {
      throw new ConfigError(`${path}: step "${step}" (${model.ref}) has no output "${output}" (it has: ${model.manifest.outputs.map((o) => o.name).join(', ')})`, { details: { path } });
    }
  }
}

function topologicalOrder(steps: readonly StepSpec[], deps: ReadonlyMap<string, readonly string[]>): StepSpec[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, 'visiting' | 'done'>();
  const order: StepSpec[] = [];
  const visit = (id: string, trail: string[]): void => {
    const seen = state.get(id);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(id)), id].join(' → ');
      throw new ConfigError(`steps: dependency cycle ${cycle}`);
    }
    state.set(id, 'visiting');
    for (const dep of deps.get(id) ?? []) visit(dep, [...trail, id]);
    state.set(id, 'done');
    const step = byId.get(id);
    if (step !== undefined) order.push(step);
  };
  for (const s of steps) visit(s.id, []);
  return order;
}

/**
 * A parsed pipeline checked against its registry and compiled: models resolved (and verified), inputs mapped
 * and shape-checked, steps ordered by dependency, CEL checked, placement decided. `registry`: anything that
 * resolves model ids (a `ModelRegistry`). `options.baseDir` resolves a relative `models.registry` (default
 * the working directory); `options.cores` sizes the default placement (default the machine's CPU count).
 * Rejects with `ConfigError` (CONFIG_INVALID) naming the config path: an unknown schema, step, feature set,
 * field, model, output or state aggregate; an invalid `state` section (config/compile-state.ts); a duplicate step id; a dependency cycle; a shape mismatch; a model that cannot
 * be resolved (its code in the message; but REGISTRY_PATH_INVALID and MODEL_FILE_TOO_LARGE keep their codes). Over its `limits`: CONFIG_TOO_MANY_STEPS, CONFIG_TOO_MANY_FEATURES,
 * CONFIG_TOO_MANY_RULES, CONFIG_RULE_TOO_LARGE (a CEL expression too long, too deep or too costly).
 */
export async function compilePipeline(
  file: PipelineFile,
  registry: ModelResolver,
  options: { baseDir?: string; cores?: number } = {},
): Promise<CompiledPipeline> {
  const baseDir = options.baseDir ?? process.cwd();
  const schema = file.schemas[file.input.schema];
  if (schema === undefined) {
    throw new ConfigError(`input.schema: unknown schema "${file.input.schema}" (defined: ${Object.keys(file.schemas).join(', ') || 'none'})`);
  }
  // The runtime's requirements of the schema, the id and key, and the features (input-contract.ts).
  checkInputContract(schema, file.input.schema, file.input.features);
  // Per-key state (compile-state.ts), and what reads it: features and CEL (state-refs.ts).
  const state = compileState(file.state, schema, file.input.schema);
  checkStateFeatures(file.input.features, state, schema, file.input.schema);
  const featureWidths = new Map(Object.entries(file.input.features).map(([name, specs]) => [name, featureColumns(specs).length]));
  checkSize(file, featureWidths);
  const celLimits = celLimitsOf(file.limits, file.input.limits);
  const checkEventRefs = (source: string, path: string): void => {
    checkCelEventRefs(source, path, schema, file.input.schema);
    checkCelStateRefs(source, path, state);
  };

  const { topic, deadLetter, shadowTopic } = file.output;
  checkTopics(file);
  const ids = new Set<string>();
  file.steps.forEach((s, i) => {
    if (ids.has(s.id)) throw new ConfigError(`steps[${i}].id: duplicate step id "${s.id}"`);
    ids.add(s.id);
  });

  // Resolve models in parallel; a failure names the step (and the field) that asked for it.
  const resolveAt = async (id: string, path: string): Promise<ResolvedModel> => {
    try {
      return await registry.resolve(id);
    } catch (err) {
      // A limit keeps its own code (README "Limits"); any other failure is the config's, its code in the message.
      for (const Limit of [RegistryPathError, ModelFileTooLargeError]) {
        if (err instanceof Limit) throw new Limit(`${path}: ${err.message}`, { cause: err, details: { ...err.details, config: path } });
      }
      const code = isVerdictError(err) ? `${err.code}: ` : '';
      throw new ConfigError(`${path}: ${code}${(err as Error).message}`, { cause: err, details: { path } });
    }
  };
  const models = await Promise.all(file.steps.map((s, i) => resolveAt(s.model, `steps[${i}].model`)));
  const candidates = await Promise.all(file.steps.map((s, i) => resolveCandidates(s, `steps[${i}]`, models[i] as ResolvedModel, resolveAt)));
  const modelOf = new Map(file.steps.map((s, i) => [s.id, models[i] as ResolvedModel]));
  const pathOf = new Map(file.steps.map((s, i) => [s.id, `steps[${i}]`]));

  const deps = new Map<string, string[]>();
  const compiledInputs = new Map<string, CompiledInput[]>();
  file.steps.forEach((step, i) => {
    const path = `steps[${i}]`;
    const model = models[i] as ResolvedModel;
    const stepDeps = new Set<string>();
    if (step.when !== undefined) {
      checkCel(step.when, `${path}.when`, 'condition', celLimits);
      checkEventRefs(step.when, `${path}.when`);
      checkStepOutputRefs(step.when, `${path}.when`, modelOf);
      for (const ref of stepRefs(step.when)) {
        if (!ids.has(ref)) throw new ConfigError(`${path}.when: refers to unknown step "${ref}"`);
        stepDeps.add(ref);
      }
    }
    for (const name of Object.keys(step.inputs)) {
      if (!model.manifest.inputs.some((t) => t.name === name)) {
        throw new ConfigError(`${path}.inputs.${name}: model ${model.ref} has no input "${name}" (it has: ${model.manifest.inputs.map((t) => t.name).join(', ')})`);
      }
    }
    const inputs = model.manifest.inputs.map((spec): CompiledInput => {
      const mapping = step.inputs[spec.name];
      const ipath = `${path}.inputs.${spec.name}`;
      if (mapping === undefined) throw new ConfigError(`${ipath}: missing: model ${model.ref} needs input "${spec.name}"`);
      const width = rowWidth(spec, ipath);
      // Each source is checked against the input's declared element type (see input-types.ts).
      const typed = (source: TypedSource): void => {
        const problem = mappingProblem(source, spec.name, spec.type);
        if (problem !== undefined) throw new ConfigError(`${ipath}: ${problem}`, { details: { path: ipath } });
      };
      const sources = (Array.isArray(mapping) ? mapping : [mapping]).map((ref): InputSource => {
        const [root, ...rest] = ref.split('.');
        if (root === 'features' && rest.length === 1) {
          const set = rest[0] ?? '';
          const w = featureWidths.get(set);
          if (w === undefined) throw new ConfigError(`${ipath}: unknown feature set "${set}" (defined: ${[...featureWidths.keys()].join(', ')})`);
          typed({ kind: 'feature', ref });
          return { kind: 'feature', set, width: w };
        }
        if (root === 'event' && rest.length >= 1) {
          const field = rest.join('.');
          const f = schema.fields[field];
          if (f === undefined) throw new ConfigError(`${ipath}: "${field}" is not a field of schema "${file.input.schema}"`);
          typed({ kind: 'event', ref, fieldType: f.type });
          return { kind: 'event', path: rest, width: 1 };
        }
        if (root === 'steps' && rest.length === 2) {
          const [dep = '', output = ''] = rest;
          const depModel = modelOf.get(dep);
          if (depModel === undefined) throw new ConfigError(`${ipath}: refers to unknown step "${dep}"`);
          const out = depModel.manifest.outputs.find((o) => o.name === output);
          if (out === undefined) throw new ConfigError(`${ipath}: step "${dep}" (${depModel.ref}) has no output "${output}"`);
          typed({ kind: 'step', ref, outputType: out.type });
          stepDeps.add(dep);
          return { kind: 'step', step: dep, output, width: rowWidth(out, `${pathOf.get(dep) ?? dep}.model`) };
        }
        throw new ConfigError(`${ipath}: "${ref}" is not a reference (use features.<set>, event.<field> or steps.<id>.<output>)`);
      });
      const total = sources.reduce((n, s) => n + s.width, 0);
      if (total !== width) {
        throw new ConfigError(`${ipath}: shape mismatch: model ${model.ref} expects ${width} values per row for "${spec.name}" (shape [${spec.shape.join(', ')}]), the mapping gives ${total}`);
      }
      return { name: spec.name, spec, width, sources };
    });
    stepDeps.delete(step.id);
    deps.set(step.id, [...stepDeps]);
    compiledInputs.set(step.id, inputs);
  });

  for (const [expr, path, kind] of [
    ...file.decision.rules.map((r, i) => [r.when, `decision.rules[${i}].when`, 'condition'] as const),
    ...(file.decision.score === undefined ? [] : [[file.decision.score, 'decision.score', 'number'] as const]),
    ...(file.decision.onIncomplete.policy === 'fallback'
      ? file.decision.onIncomplete.rules.map((r, i) => [r.when, `decision.onIncomplete.rules[${i}].when`, 'condition'] as const)
      : []),
  ]) {
    checkCel(expr, path, kind, celLimits);
    checkEventRefs(expr, path);
    checkStepOutputRefs(expr, path, modelOf);
    for (const ref of stepRefs(expr)) if (!ids.has(ref)) throw new ConfigError(`${path}: refers to unknown step "${ref}"`);
  }

  const ordered = topologicalOrder(file.steps, deps);
  const fileIndex = new Map(file.steps.map((s, i) => [s.id, i]));
  const steps = ordered.map((s, index): CompiledStep => {
    const model = modelOf.get(s.id) as ResolvedModel;
    const override = file.models.overrides[model.name] ?? {};
    const { canary, shadow } = candidates[fileIndex.get(s.id) ?? -1] ?? { canary: null, shadow: null };
    return {
      id: s.id,
      index,
      modelId: s.model,
      model,
      inputs: compiledInputs.get(s.id) ?? [],
      when: s.when ?? null,
      dependsOn: deps.get(s.id) ?? [],
      timeoutMs: s.timeoutMs ?? file.join.deadlineMs,
      batching: batchPolicySchema.parse({ ...stripUndefined(file.models.batching), ...stripUndefined(override) }),
      circuitBreaker: file.models.circuitBreaker,
      canary,
      shadow,
    };
  });

  const cores = options.cores ?? cpus().length;
  const registryRoot = isAbsolute(file.models.registry) ? file.models.registry : resolve(baseDir, file.models.registry);
  const onIncomplete = file.decision.onIncomplete;
  return {
    name: file.pipeline,
    description: file.description,
    input: { topic: file.input.topic, format: file.input.format, schemaName: file.input.schema, schema, features: file.input.features, limits: file.input.limits },
    steps,
    join: file.join,
    decision: {
      score: file.decision.score ?? null,
      rules: file.decision.rules,
      default: file.decision.default,
      onRuleError: file.decision.onRuleError,
      onIncomplete,
    },
    output: { topic, deadLetter, headers: file.output.headers, shadowTopic: shadowTopic ?? null },
    registryRoot,
    maxModelBytes: file.models.maxModelBytes,
    limits: file.limits,
    aliasPollMs: file.models.aliasPollMs,
    placement: placementOf(file.runtime, cores),
    state,
  };
}

/**
 * A step's canary and shadow, resolved and checked against the step's own model (config/step-compat.ts):
 * a candidate must take the same inputs and offer every output the rules and later steps may read. Errors
 * name the field: `steps[1].canary.model: …`, `steps[1].shadow: …`.
 */
async function resolveCandidates(
  step: StepSpec,
  path: string,
  model: ResolvedModel,
  resolveAt: (id: string, path: string) => Promise<ResolvedModel>,
): Promise<Pick<CompiledStep, 'canary' | 'shadow'>> {
  const checked = async (id: string, at: string): Promise<ResolvedModel> => {
    const candidate = await resolveAt(id, at);
    const problem = stepIncompatibility({ id: step.id, model }, candidate);
    if (problem !== null) throw new ConfigError(`${at}: ${problem}`, { details: { path: at } });
    return candidate;
  };
  const [canary, shadow] = await Promise.all([
    step.canary === undefined ? null : checked(step.canary.model, `${path}.canary.model`),
    step.shadow === undefined ? null : checked(step.shadow, `${path}.shadow`),
  ]);
  return {
    canary: canary === null || step.canary === undefined ? null : { modelId: step.canary.model, model: canary, percent: step.canary.percent },
    shadow: shadow === null || step.shadow === undefined ? null : { modelId: step.shadow, model: shadow },
  };
}

/**
 * Every topic the pipeline writes is its own, and none is the input: a pipeline writing into its input
 * topic would read its own decisions (or dead letters, forever) back as events, and decisions, dead
 * letters, shadow records and state changelog records mixed in one topic would be read as one another. `output.shadowTopic` also
 * needs a step with a shadow, or nothing would ever be written to it.
 */
function checkTopics(file: PipelineFile): void {
  const { topic, deadLetter, shadowTopic } = file.output;
  const topics: Array<[path: string, name: string | undefined]> = [
    ['input.topic', file.input.topic], ['output.topic', topic], ['output.deadLetter', deadLetter], ['output.shadowTopic', shadowTopic],
    ['state.changelogTopic', file.state?.changelogTopic],
  ];
  for (let i = 1; i < topics.length; i++) {
    const [path, name] = topics[i]!;
    const clash = topics.slice(0, i).find(([, other]) => other === name);
    if (name !== undefined && clash !== undefined) {
      throw new ConfigError(`${path}: "${name}" is also ${clash[0]}; each topic the pipeline reads or writes must be its own`, { details: { path } });
    }
  }
  if (shadowTopic !== undefined && !file.steps.some((s) => s.shadow !== undefined)) {
    throw new ConfigError(`output.shadowTopic: no step has a shadow, so nothing would be written to "${shadowTopic}"`, { details: { path: 'output.shadowTopic' } });
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
