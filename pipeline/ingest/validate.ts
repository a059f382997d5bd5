/**
 * Validating decoded events against the pipeline's named input schema. The schema is compiled once into a
 * zod schema (nested objects for dotted field names); extra fields pass through untouched.
 */
import { z } from 'zod';
import { SchemaError } from '../../core/errors.js';
import type { FieldSpec, InputSchemaSpec } from '../../config/pipeline-schema.js';

export type EventValidator = (event: Record<string, unknown>) => Record<string, unknown>;

function fieldType(spec: FieldSpec): z.ZodType {
  switch (spec.type) {
    case 'string':
      return spec.enum !== undefined && spec.enum.length > 0 ? z.enum(spec.enum as [string, ...string[]]) : z.string();
    case 'boolean':
      return z.boolean();
    case 'object':
      return z.looseObject({});
    case 'number':
    case 'integer': {
      let n = spec.type === 'integer' ? z.number().int() : z.number();
      if (spec.min !== undefined) n = n.min(spec.min);
      if (spec.max !== undefined) n = n.max(spec.max);
      return n;
    }
  }
}

interface Node {
  spec?: FieldSpec;
  children: Map<string, Node>;
}

function build(node: Node): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, child] of node.children) {
    let t = child.children.size > 0 ? build(child) : child.spec === undefined ? z.unknown() : fieldType(child.spec);
    if (child.spec !== undefined && !child.spec.required) t = t.optional();
    shape[name] = t;
  }
  return z.looseObject(shape);
}

export function compileValidator(schema: InputSchemaSpec, schemaName: string): EventValidator {
  const root: Node = { children: new Map() };
  for (const [path, spec] of Object.entries(schema.fields)) {
    let node = root;
    for (const part of path.split('.')) {
      let next = node.children.get(part);
      if (next === undefined) node.children.set(part, (next = { children: new Map() }));
      node = next;
    }
    node.spec = spec;
  }
  const zschema = build(root);
  return (event) => {
    const result = zschema.safeParse(event);
    if (result.success) return event;
    const issues = result.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new SchemaError(`event does not match schema "${schemaName}": ${issues}`);
  };
}
