/**
 * The input contract: what the runtime requires of a pipeline's input schema and of every event, in one
 * place. The compiler calls `checkInputContract` so that anything that would fail for every event is a
 * ConfigError naming its config path (`verdict validate` runs the same compiler); ingestion calls
 * `resolveIdentity` and `identify`, the same rules applied to one event.
 *
 * Ids and keys: a string, or an integer (database ids are), which becomes its decimal string: 42 → "42",
 * exactly and always the same. A non-integer or an integer beyond 2^53 (which a JS number cannot hold
 * exactly) is refused per event with a SchemaError; a bigint is exact and is accepted.
 */
import { ConfigError, SchemaError } from '../core/errors.js';
import type { FeatureSpec, FieldSpec, InputSchemaSpec } from './pipeline-schema.js';

type Event = Readonly<Record<string, unknown>>;

/** The field types an id or key may have. */
const IDENTITY_TYPES: ReadonlySet<FieldSpec['type']> = new Set(['string', 'integer']);
/** The default key field, used only when the schema declares it. */
const DEFAULT_KEY = 'key';

export interface EventIdentity {
  /** The field that carries the event id: declared, required, string or integer. */
  readonly idField: string;
  /** The field that carries the partition key, or null: then the record's key, or else the id. */
  readonly keyField: string | null;
}

/** Reads a dotted path (`device.id`) from an event; undefined when any step is missing. */
export function readPath(event: Event, path: string): unknown {
  let cur: unknown = event;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Event)[part];
  }
  return cur;
}

/**
 * The id and key fields of `schema`, checked: a ConfigError under `schemas.<name>.id` / `.key` when the
 * field is not declared, is optional (id only), or has a type that cannot be an identity.
 */
export function resolveIdentity(schema: InputSchemaSpec, schemaName: string): EventIdentity {
  const at = `schemas.${schemaName}`;
  const id = schema.fields[schema.id];
  if (id === undefined) {
    throw new ConfigError(`${at}.id: "${schema.id}" is not a field of schema "${schemaName}" (declare it as a string or an integer)`, { details: { path: `${at}.id` } });
  }
  if (!IDENTITY_TYPES.has(id.type)) {
    throw new ConfigError(`${at}.id: field "${schema.id}" is a ${id.type}; an event id must be a string or an integer`, { details: { path: `${at}.id` } });
  }
  if (!id.required) {
    throw new ConfigError(`${at}.id: field "${schema.id}" is optional; the event id must be required`, { details: { path: `${at}.id` } });
  }
  const keyName = schema.key ?? (schema.fields[DEFAULT_KEY] === undefined ? null : DEFAULT_KEY);
  if (keyName !== null) {
    const key = schema.fields[keyName];
    if (key === undefined) {
      throw new ConfigError(`${at}.key: "${keyName}" is not a field of schema "${schemaName}" (declare it, or leave key out to key by the record's key)`, { details: { path: `${at}.key` } });
    }
    if (!IDENTITY_TYPES.has(key.type)) {
      throw new ConfigError(`${at}.key: field "${keyName}" is a ${key.type}; a key must be a string or an integer`, { details: { path: `${at}.key` } });
    }
  }
  return { idField: schema.id, keyField: keyName };
}

/** A string id or key as is; an integer as its decimal string; anything else undefined (absent) or a SchemaError. */
export function identityString(value: unknown, field: string, what: 'id' | 'key'): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') {
    if (value.length === 0) throw new SchemaError(`event ${what} in field "${field}" is empty`, { details: { field } });
    return value;
  }
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return String(value);
    throw new SchemaError(`event ${what} in field "${field}" must be a string or a safe integer, got ${value}`, { details: { field, got: String(value) } });
  }
  if (typeof value === 'bigint') return value.toString();
  throw new SchemaError(`event ${what} in field "${field}" must be a string or an integer, got ${typeof value}`, { details: { field, got: typeof value } });
}

/**
 * The event's id and key, by the contract above; without a key field, the record's key as text, else the
 * id. Throws SchemaError for this event only.
 */
export function identify(event: Event, identity: EventIdentity, recordKey: Buffer | null): { id: string; key: string } {
  const id = identityString(readPath(event, identity.idField), identity.idField, 'id');
  if (id === undefined) throw new SchemaError(`event has no id in field "${identity.idField}"`, { details: { field: identity.idField } });
  const key = identity.keyField === null ? undefined : identityString(readPath(event, identity.keyField), identity.keyField, 'key');
  return { id, key: key ?? recordKey?.toString('utf8') ?? id };
}

const NUMERIC: ReadonlySet<FieldSpec['type']> = new Set(['number', 'integer']);

/**
 * The schema and feature checks: everything here would otherwise fail (or silently never match) for every
 * event. Throws a ConfigError whose message starts with the config path.
 */
export function checkInputContract(schema: InputSchemaSpec, schemaName: string, features: Readonly<Record<string, readonly FeatureSpec[]>>): EventIdentity {
  const at = `schemas.${schemaName}.fields`;
  for (const [name, spec] of Object.entries(schema.fields)) {
    const parts = name.split('.');
    for (let n = 1; n < parts.length; n++) {
      const parent = schema.fields[parts.slice(0, n).join('.')];
      if (parent !== undefined && parent.type !== 'object') {
        throw new ConfigError(`${at}.${name}: its parent "${parts.slice(0, n).join('.')}" is a ${parent.type}, not an object`);
      }
    }
    if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
      throw new ConfigError(`${at}.${name}: min ${spec.min} is above max ${spec.max}; no value can pass`);
    }
    if (spec.type === 'integer') {
      // Integers are exact JS numbers (|v| ≤ 2^53 − 1); outside that the validator refuses every value.
      const low = Math.max(Math.ceil(spec.min ?? -Infinity), -Number.MAX_SAFE_INTEGER);
      const high = Math.min(Math.floor(spec.max ?? Infinity), Number.MAX_SAFE_INTEGER);
      if (low > high) {
        throw new ConfigError(`${at}.${name}: no integer lies between min ${spec.min ?? '-∞'} and max ${spec.max ?? '∞'} within ±(2^53 − 1); no value can pass`);
      }
    }
    if ((spec.min !== undefined || spec.max !== undefined) && !NUMERIC.has(spec.type)) {
      throw new ConfigError(`${at}.${name}: min and max apply to numbers; the field is a ${spec.type}`);
    }
    if (spec.enum !== undefined && spec.type !== 'string') {
      throw new ConfigError(`${at}.${name}.enum: only string fields take an enum; the field is a ${spec.type}`);
    }
  }
  const identity = resolveIdentity(schema, schemaName);
  for (const [set, specs] of Object.entries(features)) {
    specs.forEach((spec, i) => checkFeature(schema, schemaName, spec, `input.features.${set}[${i}]`));
  }
  return identity;
}

/** The declared field at `path`, or, for a path inside a declared `object` field, that object's spec. */
export function declaredField(schema: InputSchemaSpec, path: string): { field: string; spec: FieldSpec } | undefined {
  const parts = path.split('.');
  for (let n = parts.length; n >= 1; n--) {
    const field = parts.slice(0, n).join('.');
    const spec = schema.fields[field];
    if (spec !== undefined) return n === parts.length || spec.type === 'object' ? { field, spec } : undefined;
  }
  return undefined;
}

function checkFeature(schema: InputSchemaSpec, schemaName: string, spec: FeatureSpec, at: string): void {
  // State features are checked against the state section once it is compiled (config/state-refs.ts).
  if ('state' in spec) return;
  const type = (field: string, where: string): FieldSpec['type'] | 'unknown' => {
    const found = declaredField(schema, field);
    if (found === undefined) throw new ConfigError(`${at}.${where}: "${field}" is not a field of schema "${schemaName}"`);
    // A path inside a declared object is not typed by the schema: the event decides.
    return found.field === field ? found.spec.type : 'unknown';
  };
  const t = type(spec.field, 'field');
  if ('oneHot' in spec) {
    if (t === 'object') throw new ConfigError(`${at}.field: "${spec.field}" is an object; oneHot needs a string, number or boolean`);
    spec.oneHot.forEach((v, j) => {
      const first = spec.oneHot.indexOf(v);
      if (first !== j) throw new ConfigError(`${at}.oneHot[${j}]: "${v}" is listed twice (first at oneHot[${first}])`);
    });
    const values = schema.fields[spec.field]?.enum;
    if (values !== undefined && values.length > 0) {
      spec.oneHot.forEach((v, j) => {
        if (!values.includes(v)) throw new ConfigError(`${at}.oneHot[${j}]: "${v}" is not in the enum of "${spec.field}" (${values.join(', ')}); its column could never be 1`);
      });
    }
  } else if ('equalsField' in spec) {
    type(spec.equalsField, 'equalsField');
  } else if (spec.transform === 'bool') {
    if (t !== 'unknown' && t !== 'boolean' && !NUMERIC.has(t)) throw new ConfigError(`${at}.field: "${spec.field}" is a ${t}; transform bool needs a boolean or a number`);
  } else if (t !== 'unknown' && !NUMERIC.has(t)) {
    throw new ConfigError(`${at}.field: "${spec.field}" is a ${t}; a numeric feature (transform ${spec.transform}) needs a number or an integer`);
  }
}

const EVENT_REF = /(?<![\w.])event\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(\s*\()?/g;
const STRING_LITERAL = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g;

/**
 * Checks the `event.<field>` references of a CEL expression against the schema: a reference to a field
 * the schema does not declare fails on every event that lacks it, unless the expression tests it with
 * `has(event.<field>)`. A path inside a declared `object` field is the event's business.
 */
export function checkCelEventRefs(source: string, path: string, schema: InputSchemaSpec, schemaName: string): void {
  const code = source.replace(STRING_LITERAL, '""');
  for (const m of code.matchAll(EVENT_REF)) {
    let ref = m[1] ?? '';
    // `event.currency.startsWith("x")`: the last segment is a method, not a field.
    if (m[2] !== undefined) ref = ref.split('.').slice(0, -1).join('.');
    if (ref.length === 0 || declaredField(schema, ref) !== undefined) continue;
    if (code.includes(`has(event.${ref})`)) continue;
    const top = declaredField(schema, ref.split('.')[0] ?? ref);
    const why = top === undefined ? `is not a field of schema "${schemaName}"` : `is inside "${top.field}", a ${top.spec.type}`;
    throw new ConfigError(`${path}: event.${ref} ${why}; it would fail for every event (guard an undeclared field with has(event.${ref}))`, { details: { path } });
  }
}
