/**
 * Reading an event's field by a (dotted) path, compiled once into a getter so a read per event walks no
 * string: what feature columns (ingest/features.ts) and per-key state (state/event-fields.ts) both read.
 */

type Event = Readonly<Record<string, unknown>>;

/** Reads one field of an event; undefined when any step of the path is missing or not an object. */
export type FieldGetter = (event: Event) => unknown;

/** Compiles a dotted path (`device.id`) into a getter. The compiler has checked the path's shape. */
export function fieldGetter(path: string): FieldGetter {
  const parts = path.split('.');
  const [a, b] = parts;
  // The common one- and two-segment paths avoid a loop per read.
  if (parts.length === 1 && a !== undefined) return (e) => e[a];
  if (parts.length === 2 && a !== undefined && b !== undefined) {
    return (e) => {
      const o = e[a];
      return typeof o === 'object' && o !== null ? (o as Event)[b] : undefined;
    };
  }
  return (e) => {
    let cur: unknown = e;
    for (const p of parts) {
      if (typeof cur !== 'object' || cur === null) return undefined;
      cur = (cur as Event)[p];
    }
    return cur;
  };
}

/** A field path as errors print it: `device.id`, `items[3].sku`, `(root)` for the event itself. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out === '' ? '(root)' : out;
}
