/** Reading Prometheus exposition text in tests: one family's series, by label set. */

/**
 * Every series of `name` in `text` (the exposition format /metrics serves): the label set as written
 * (`{pipeline="p",step="gbt"}`, or '' for an unlabelled series) → its value.
 */
export function seriesOf(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    found.set(line.slice(name.length, space), Number(line.slice(space + 1)));
  }
  return found;
}
