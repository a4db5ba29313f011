/**
 * What the subscribers received in one run: distinct deliveries per (subscriber, publisher, sequence),
 * duplicates, foreign payloads (another run id), the highest sequence seen per publisher (for the QoS 0
 * window), deliveries and end-to-end latency inside the measured window.
 */
import { PayloadOffset } from './client.js';

/** Latency samples kept per run at most (a sorted array, no histogram). */
const MAX_LATENCY_SAMPLES = 4_000_000;

export class DeliveryLedger {
  /** One bitmap of seen sequence numbers per (subscriber, publisher). */
  private readonly seen: Uint8Array[];
  /** Highest sequence number seen per (subscriber, publisher), -1 before the first. */
  readonly highest: Int32Array;
  distinct = 0;
  duplicates = 0;
  foreign = 0;

  /** True during the measured window. */
  measuring = false;
  windowDeliveries = 0;
  private latencies = new Float64Array(1 << 16);
  private latencyCount = 0;

  constructor(readonly runId: number, readonly publishers: number, readonly subscribers: number) {
    const pairs = publishers * subscribers;
    this.seen = Array.from({ length: pairs }, () => new Uint8Array(1024));
    this.highest = new Int32Array(pairs).fill(-1);
  }

  /** Records one PUBLISH payload received by `subscriber` at `now` (performance.now() ms). */
  record(subscriber: number, payload: Buffer, now: number): void {
    if (payload.length < PayloadOffset.minimumSize || payload.readUInt32LE(PayloadOffset.runId) !== this.runId) {
      this.foreign++;
      return;
    }
    const publisher = payload.readUInt32LE(PayloadOffset.publisher);
    if (publisher >= this.publishers) {
      this.foreign++;
      return;
    }
    const sequence = payload.readUInt32LE(PayloadOffset.sequence);
    const pair = subscriber * this.publishers + publisher;
    let bits = this.seen[pair]!;
    const byte = sequence >>> 3;
    if (byte >= bits.length) {
      let size = bits.length * 2;
      while (size <= byte) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(bits);
      this.seen[pair] = bits = grown;
    }
    const mask = 1 << (sequence & 7);
    if ((bits[byte]! & mask) !== 0) {
      this.duplicates++;
      return;
    }
    bits[byte] = bits[byte]! | mask;
    this.distinct++;
    if (sequence > this.highest[pair]!) this.highest[pair] = sequence;
    if (this.measuring) {
      this.windowDeliveries++;
      if (this.latencyCount < MAX_LATENCY_SAMPLES) {
        if (this.latencyCount === this.latencies.length) {
          const grown = new Float64Array(this.latencies.length * 2);
          grown.set(this.latencies);
          this.latencies = grown;
        }
        this.latencies[this.latencyCount++] = now - payload.readDoubleLE(PayloadOffset.sentAt);
      }
    }
  }

  /** Latency percentiles (ms) of the deliveries inside the measured window. */
  latencyPercentiles(): { p50: number; p99: number; samples: number } {
    const n = this.latencyCount;
    if (n === 0) return { p50: Number.NaN, p99: Number.NaN, samples: 0 };
    const sorted = this.latencies.subarray(0, n).sort();
    const at = (q: number): number => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!;
    return { p50: at(0.5), p99: at(0.99), samples: n };
  }
}
