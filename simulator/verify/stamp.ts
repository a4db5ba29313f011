/**
 * The 20-byte stamp every simulator payload starts with, so a subscriber can tell which stream and
 * sequence a delivery belongs to, at which QoS it was published, and when it was *scheduled* to be sent
 * (end-to-end latency is measured from the schedule, so coordinated omission cannot hide a stall).
 *
 * Layout (big-endian):
 *   0-1   magic 0x6D 0x53 ('mS')
 *   2     version (1)
 *   3     QoS the publisher used (0..2)
 *   4-7   stream id (uint32)
 *   8-11  sequence (uint32)
 *   12-19 scheduled send time (float64, epoch ms with a sub-ms fraction)
 */

export const STAMP_LENGTH = 20;
export const STAMP_MAGIC_0 = 0x6d;
export const STAMP_MAGIC_1 = 0x53;
export const STAMP_VERSION = 1;

export interface Stamp {
  stream: number;
  seq: number;
  qos: 0 | 1 | 2;
  scheduledMs: number;
}

// Scratch for float64 conversions: no allocation per message, works on any Uint8Array (not only Buffer).
const scratch = new DataView(new ArrayBuffer(8));

function writeUint32BE(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

function readUint32BE(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

function isUint32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/**
 * Writes a stamp at `offset` (normally 0). Throws a RangeError when the buffer is too short or an
 * argument is out of range: that is a simulator bug, not a runtime condition.
 */
export function writeStamp(buf: Uint8Array, offset: number, stream: number, seq: number, qos: 0 | 1 | 2, scheduledMs: number): void {
  if (offset < 0 || offset + STAMP_LENGTH > buf.length) {
    throw new RangeError(`writeStamp: need ${STAMP_LENGTH} bytes at offset ${offset}, buffer has ${buf.length}`);
  }
  if (!isUint32(stream)) throw new RangeError(`writeStamp: stream must be a uint32, got ${stream}`);
  if (!isUint32(seq)) throw new RangeError(`writeStamp: seq must be a uint32, got ${seq}`);
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError(`writeStamp: qos must be 0, 1 or 2, got ${String(qos)}`);
  buf[offset] = STAMP_MAGIC_0;
  buf[offset + 1] = STAMP_MAGIC_1;
  buf[offset + 2] = STAMP_VERSION;
  buf[offset + 3] = qos;
  writeUint32BE(buf, offset + 4, stream);
  writeUint32BE(buf, offset + 8, seq);
  scratch.setFloat64(0, scheduledMs, false);
  for (let i = 0; i < 8; i++) buf[offset + 12 + i] = scratch.getUint8(i);
}

/**
 * Reads the stamp at the start of `buf` (or at `offset`) into `out` without allocating; returns false
 * (leaving `out` untouched) for a payload that is too short or not ours (magic, version or QoS byte).
 */
export function readStampInto(buf: Uint8Array, out: Stamp, offset = 0): boolean {
  if (offset < 0 || buf.length - offset < STAMP_LENGTH) return false;
  if (buf[offset] !== STAMP_MAGIC_0 || buf[offset + 1] !== STAMP_MAGIC_1 || buf[offset + 2] !== STAMP_VERSION) return false;
  const qos = buf[offset + 3]!;
  if (qos > 2) return false;
  for (let i = 0; i < 8; i++) scratch.setUint8(i, buf[offset + 12 + i]!);
  out.qos = qos as 0 | 1 | 2;
  out.stream = readUint32BE(buf, offset + 4);
  out.seq = readUint32BE(buf, offset + 8);
  out.scheduledMs = scratch.getFloat64(0, false);
  return true;
}

/** The stamp at the start of a payload, or null for a short or foreign payload. */
export function readStamp(buf: Uint8Array): Stamp | null {
  const out: Stamp = { stream: 0, seq: 0, qos: 0, scheduledMs: 0 };
  return readStampInto(buf, out) ? out : null;
}

/**
 * Wall-clock epoch milliseconds with a sub-millisecond fraction. performance.timeOrigin is the thread's
 * start as an epoch time, so the sum is the same clock in every worker thread of a process.
 */
export function preciseNowMs(): number {
  return performance.timeOrigin + performance.now();
}
