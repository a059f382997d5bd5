/**
 * The keys of a partition ordered (lazily) by event time, so idle keys are found without scanning all keys.
 *
 * A min-heap on `heapTs`, a lower bound of the entry's true greatest event time: applying an event does
 * not touch the heap (nothing per event); a sweep pops entries whose bound is below the threshold and
 * either evicts them (truly idle) or re-files them under their current time. Entries know their position,
 * so removing an evicted key is O(log n) and the heap never holds more entries than there are keys.
 */

export interface HeapEntry {
  /** A lower bound of the key's greatest event time: its value when the entry was last filed. */
  heapTs: number;
  /** Position in the heap; -1 when not in it. */
  heapPos: number;
}

export class ExpiryHeap<E extends HeapEntry> {
  readonly #items: E[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The entry with the lowest bound, or undefined. */
  peek(): E | undefined {
    return this.#items[0];
  }

  push(e: E, ts: number): void {
    e.heapTs = ts;
    e.heapPos = this.#items.length;
    this.#items.push(e);
    this.#up(e.heapPos);
  }

  /** Re-files the top entry under a new (greater) bound. */
  refileTop(ts: number): void {
    const top = this.#items[0];
    if (top === undefined) return;
    top.heapTs = ts;
    this.#down(0);
  }

  remove(e: E): void {
    const pos = e.heapPos;
    if (pos < 0) return;
    const last = this.#items.pop() as E;
    e.heapPos = -1;
    if (pos === this.#items.length) return;
    this.#items[pos] = last;
    last.heapPos = pos;
    this.#down(pos);
    this.#up(last.heapPos);
  }

  clear(): void {
    for (const e of this.#items) e.heapPos = -1;
    this.#items.length = 0;
  }

  #up(pos: number): void {
    const items = this.#items;
    const e = items[pos] as E;
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      const p = items[parent] as E;
      if (p.heapTs <= e.heapTs) break;
      items[pos] = p;
      p.heapPos = pos;
      pos = parent;
    }
    items[pos] = e;
    e.heapPos = pos;
  }

  #down(pos: number): void {
    const items = this.#items;
    const n = items.length;
    const e = items[pos] as E;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && (items[right] as E).heapTs < (items[child] as E).heapTs) child = right;
      const c = items[child] as E;
      if (c.heapTs >= e.heapTs) break;
      items[pos] = c;
      c.heapPos = pos;
      pos = child;
    }
    items[pos] = e;
    e.heapPos = pos;
  }
}
