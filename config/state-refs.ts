/**
 * The compiler's checks of what reads per-key state: feature columns `{ state: <name> }` and CEL's
 * `state.<name>`. A name the `state` section does not declare would fail (or never match) for every event,
 * so it is refused with the config path, as undeclared event fields are (config/input-contract.ts).
 */
import { ConfigError } from '../core/errors.js';
import type { CompiledAggregate, CompiledState } from './compiled-state.js';
import { declaredField } from './input-contract.js';
import type { FeatureSpec, InputSchemaSpec } from './pipeline-schema.js';

function declaredNames(state: CompiledState | null): string {
  return state === null ? 'the pipeline declares no state' : `declared: ${state.aggregates.map((a) => a.name).join(', ')}`;
}

function aggregateAt(state: CompiledState | null, name: string, path: string): CompiledAggregate {
  const found = state?.aggregates.find((a) => a.name === name);
  if (found === undefined) throw new ConfigError(`${path}: "${name}" is not a declared state aggregate (${declaredNames(state)})`, { details: { path } });
  return found;
}

/**
 * What an aggregate's values can be: every op but `last` gives numbers (or null); `last` gives its field's
 * values, typed by the schema (`unknown` inside a declared object).
 */
function valueType(agg: CompiledAggregate, schema: InputSchemaSpec): string {
  if (agg.op !== 'last') return 'number';
  const found = declaredField(schema, agg.field);
  if (found === undefined || found.field !== agg.field) return 'unknown';
  return found.spec.type === 'integer' ? 'number' : found.spec.type;
}

/**
 * Every `{ state: <name> }` feature against the declared aggregates (and the schema, for `last` values and
 * `equalsField`): an undeclared name, a `last` of a string into a numeric column, an undeclared field.
 */
export function checkStateFeatures(features: Readonly<Record<string, readonly FeatureSpec[]>>, state: CompiledState | null, schema: InputSchemaSpec, schemaName: string): void {
  for (const [set, specs] of Object.entries(features)) {
    specs.forEach((spec, i) => {
      if (!('state' in spec)) return;
      const at = `input.features.${set}[${i}]`;
      const agg = aggregateAt(state, spec.state, `${at}.state`);
      if ('equalsField' in spec) {
        if (declaredField(schema, spec.equalsField) === undefined) {
          throw new ConfigError(`${at}.equalsField: "${spec.equalsField}" is not a field of schema "${schemaName}"`, { details: { path: `${at}.equalsField` } });
        }
        return;
      }
      const t = valueType(agg, schema);
      const ok = t === 'number' || t === 'unknown' || (t === 'boolean' && spec.transform === 'bool');
      if (!ok) {
        const want = spec.transform === 'bool' ? 'a boolean or a number' : 'a number';
        const what = agg.op === 'last' ? `the last "${agg.field}", a ${t}` : `a ${t}`;
        throw new ConfigError(`${at}.state: "${spec.state}" is ${what}; transform ${spec.transform} needs ${want} (compare it with equalsField instead)`, { details: { path: `${at}.state` } });
      }
    });
  }
}

const STRING_LITERAL = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g;
const STATE_DOT = /(?<![\w.])state\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g;
const STATE_INDEX = /(?<![\w.])state\s*\[\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\]/g;

/**
 * `state.<name>` (and `state["<name>"]`) in a CEL expression must name a declared aggregate: the `state`
 * map holds exactly the declared names, so any other would fail on every event.
 */
export function checkCelStateRefs(source: string, path: string, state: CompiledState | null): void {
  const names = new Set(state?.aggregates.map((a) => a.name) ?? []);
  const refuse = (name: string): never => {
    throw new ConfigError(`${path}: state.${name} is not a declared state aggregate (${declaredNames(state)})`, { details: { path } });
  };
  for (const m of source.replace(STRING_LITERAL, '""').matchAll(STATE_DOT)) if (!names.has(m[1] ?? '')) refuse(m[1] ?? '');
  for (const m of source.matchAll(STATE_INDEX)) {
    const literal = m[1] ?? '""';
    const name = literal.slice(1, -1);
    if (!names.has(name)) refuse(name);
  }
}
