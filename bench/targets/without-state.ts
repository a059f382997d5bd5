/**
 * The pipeline file with its per-key state taken out, for the `-no-state` targets: the same pipeline, the
 * same models and the same feature width, so the two targets side by side give the cost of state per event.
 *
 * - `state` is dropped (the compiled pipeline keeps none: no state stage, no changelog).
 * - A numeric state column `{ state: x, transform }` becomes an event-field column: the aggregate's own field
 *   when it is a required numeric field of the schema (`amount_mean_7d` → `{ field: amount, transform }`), a
 *   plausible value for the models; otherwise (counts, distincts, time since, last) a constant 1, written as
 *   `{ field: <id field>, equalsField: <id field> }`: a count's usual value (the event itself), and the
 *   cheapest column there is.
 * - `{ state: x, equalsField: f }` becomes `{ field: f, equalsField: f }` (also 1).
 * - Decision rules, fallback rules and the score that read `state.` are dropped (a fallback left without
 *   rules becomes fail-open); a step `when` that reads it is dropped, so that step always runs.
 *
 * The columns' values differ from the state's, so the models' outputs, and with them the share of events
 * the cascaded MLP runs on, may differ a little: that is the comparison's known imprecision.
 */
import type { FeatureSpec, PipelineFile, RuleSpec } from '../../config/pipeline-schema.js';

/** CEL that reads the state map: `state.x` or `state["x"]`, not a field named state (`event.state.x`). */
const READS_STATE = /(?<![\w.])state\s*[.[]/;

export function readsState(cel: string): boolean {
  return READS_STATE.test(cel);
}

export function withoutState(file: PipelineFile): PipelineFile {
  const { state, ...rest } = file;
  if (state === undefined) return file;
  const schema = file.schemas[file.input.schema];
  const idField = schema?.id ?? 'id';
  const numeric = (field: string): boolean => {
    const spec = schema?.fields[field];
    return spec !== undefined && spec.required && (spec.type === 'number' || spec.type === 'integer');
  };
  const column = (spec: FeatureSpec): FeatureSpec => {
    if (!('state' in spec)) return spec;
    if ('equalsField' in spec) return { field: spec.equalsField, equalsField: spec.equalsField };
    const aggregate = state.aggregates[spec.state];
    const own = aggregate !== undefined && 'field' in aggregate ? aggregate.field : undefined;
    if (own !== undefined && numeric(own)) return { field: own, transform: spec.transform };
    return { field: idField, equalsField: idField };
  };
  const keep = (rules: readonly RuleSpec[]): RuleSpec[] => rules.filter((r) => !readsState(r.when));
  const { score, ...decision } = file.decision;
  const onIncomplete = file.decision.onIncomplete;
  const fallbackRules = onIncomplete.policy === 'fallback' ? keep(onIncomplete.rules) : [];
  return {
    ...rest,
    input: { ...file.input, features: Object.fromEntries(Object.entries(file.input.features).map(([name, specs]) => [name, specs.map(column)])) },
    steps: file.steps.map(({ when, ...step }) => (when === undefined || readsState(when) ? step : { ...step, when })),
    decision: {
      ...decision,
      ...(score === undefined || readsState(score) ? {} : { score }),
      rules: keep(file.decision.rules),
      onIncomplete: onIncomplete.policy !== 'fallback' ? onIncomplete
        : fallbackRules.length === 0 ? { policy: 'fail-open' } : { ...onIncomplete, rules: fallbackRules },
    },
  };
}
