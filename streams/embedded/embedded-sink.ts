/**
 * A producer of the embedded log, behind the same `Sink` seam as Kafka. Appending is synchronous, so
 * `send` resolves once every record is in its partition, as a Kafka send resolves on the broker's acks.
 */
import { TransportError } from '../../core/errors.js';
import type { RejectedRecord, Sink } from '../types.js';
import type { OutboundRecord } from '../../pipeline/record.js';

const NONE_REJECTED: readonly RejectedRecord[] = Object.freeze([]);

export class EmbeddedSink implements Sink {
  private closed = false;

  constructor(private readonly append: (records: readonly OutboundRecord[]) => void) {}

  /** The embedded log accepts any record, so nothing is ever rejected record by record; every send is whole (`SendOptions`). */
  send(records: readonly OutboundRecord[]): Promise<readonly RejectedRecord[]> {
    if (this.closed) return Promise.reject(new TransportError('send after close', { retryable: false }));
    try {
      this.append(records);
      return Promise.resolve(NONE_REJECTED);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new TransportError(String(err)));
    }
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
