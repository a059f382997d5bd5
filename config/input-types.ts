/**
 * Which sources may feed a model input of which element type. The compiler applies this to every mapping,
 * so a conversion that would lose information is a config error naming its path, never a silent rounding
 * or truncation on live traffic. The rule:
 *
 * - a `number` field feeds float inputs only (float16/32 round to nearest, which is what such a model asks
 *   for); an integer input would have to truncate, so it is refused;
 * - an `integer` field feeds integer inputs (each value's range is checked when packed) and float inputs;
 * - a `boolean` field feeds bool inputs, and numeric inputs as exactly 0 or 1;
 * - a `string` field feeds string inputs only; an `object` field feeds nothing;
 * - a feature set is float (computed in float64 when it feeds a float64 input): float inputs only;
 * - a step output carries its declared type: float outputs feed float inputs, integer outputs feed integer
 *   (range checked) and float inputs, bool outputs feed bool and numeric inputs, string outputs string inputs.
 */
import type { FieldSpec } from './pipeline-schema.js';
import type { ElementType } from '../models/types.js';

const FLOATS: ReadonlySet<ElementType> = new Set(['float16', 'float32', 'float64']);
const INTS: ReadonlySet<ElementType> = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64']);

type Kind = 'float' | 'integer' | 'bool' | 'string' | 'object';

function accepts(kind: Kind, input: ElementType): boolean {
  switch (kind) {
    case 'float': return FLOATS.has(input);
    case 'integer': return FLOATS.has(input) || INTS.has(input);
    case 'bool': return input === 'bool' || FLOATS.has(input) || INTS.has(input);
    case 'string': return input === 'string';
    case 'object': return false;
  }
}

function kindOfElement(type: ElementType): Kind {
  if (FLOATS.has(type)) return 'float';
  if (INTS.has(type)) return 'integer';
  return type === 'bool' ? 'bool' : 'string';
}

const FIELD_KIND: Readonly<Record<FieldSpec['type'], Kind>> = {
  number: 'float', integer: 'integer', boolean: 'bool', string: 'string', object: 'object',
};

export type TypedSource =
  | { readonly kind: 'feature'; readonly ref: string }
  | { readonly kind: 'event'; readonly ref: string; readonly fieldType: FieldSpec['type'] }
  | { readonly kind: 'step'; readonly ref: string; readonly outputType: ElementType };

/** Why `source` cannot feed input `name` of type `input`, or undefined when it can. */
export function mappingProblem(source: TypedSource, name: string, input: ElementType): string | undefined {
  let kind: Kind;
  let what: string;
  if (source.kind === 'feature') {
    kind = 'float';
    what = 'a float feature set';
  } else if (source.kind === 'event') {
    kind = FIELD_KIND[source.fieldType];
    what = `a ${source.fieldType} field`;
  } else {
    kind = kindOfElement(source.outputType);
    what = `a ${source.outputType} output`;
  }
  if (accepts(kind, input)) return undefined;
  const hint = kind === 'float' && INTS.has(input)
    ? ' (a number would be truncated; declare the field `integer` or give the model a float input)'
    : '';
  return `${source.ref} is ${what}, input '${name}' is ${input}${hint}`;
}
