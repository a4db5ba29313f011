/** The 20-byte payload stamp: exact layout, round trip, and rejection of short and foreign payloads. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { preciseNowMs, readStamp, readStampInto, STAMP_LENGTH, writeStamp, type Stamp } from '../../../../simulator/verify/stamp.js';

describe('stamp', () => {
  it('is 20 bytes with the documented big-endian layout', () => {
    expect(STAMP_LENGTH).toBe(20);
    const buf = Buffer.alloc(24, 0xee);
    writeStamp(buf, 0, 0x01020304, 0xa0b0c0d0, 2, 1.5);
    const expected = Buffer.alloc(8);
    expected.writeDoubleBE(1.5);
    expect([...buf.subarray(0, 12)]).toEqual([0x6d, 0x53, 1, 2, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
    expect(buf.subarray(12, 20)).toEqual(expected);
    expect([...buf.subarray(20)]).toEqual([0xee, 0xee, 0xee, 0xee]); // nothing written past the stamp
  });

  it('round-trips any stream, sequence, QoS and time, also at an offset and in a plain Uint8Array', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.constantFrom<0 | 1 | 2>(0, 1, 2),
        fc.double({ min: 0, max: 4e12, noNaN: true }),
        fc.nat({ max: 16 }),
        (stream, seq, qos, scheduledMs, offset) => {
          const buf = Buffer.alloc(offset + STAMP_LENGTH + 3);
          writeStamp(buf, offset, stream, seq, qos, scheduledMs);
          expect(readStamp(buf.subarray(offset))).toEqual({ stream, seq, qos, scheduledMs });
          const plain = new Uint8Array(STAMP_LENGTH);
          writeStamp(plain, 0, stream, seq, qos, scheduledMs);
          const out: Stamp = { stream: -1, seq: -1, qos: 0, scheduledMs: -1 };
          expect(readStampInto(plain, out)).toBe(true);
          expect(out).toEqual({ stream, seq, qos, scheduledMs });
        },
      ),
    );
  });

  it('keeps the sub-millisecond fraction of the scheduled time', () => {
    const buf = Buffer.alloc(STAMP_LENGTH);
    const t = 1_700_000_000_123.456;
    writeStamp(buf, 0, 1, 1, 0, t);
    expect(readStamp(buf)?.scheduledMs).toBe(t);
  });

  it('returns null for a payload shorter than the stamp', () => {
    const buf = Buffer.alloc(STAMP_LENGTH);
    writeStamp(buf, 0, 7, 9, 1, 123);
    expect(readStamp(buf.subarray(0, STAMP_LENGTH - 1))).toBeNull();
    expect(readStamp(Buffer.alloc(0))).toBeNull();
  });

  it('returns null for foreign payloads: wrong magic, unknown version, impossible QoS', () => {
    const good = Buffer.alloc(STAMP_LENGTH + 10);
    writeStamp(good, 0, 7, 9, 1, 123);
    for (const [index, value] of [[0, 0x7b], [1, 0x00], [2, 2], [3, 3]] as const) {
      const bad = Buffer.from(good);
      bad[index] = value;
      expect(readStamp(bad), `byte ${index} = ${value}`).toBeNull();
    }
    expect(readStamp(Buffer.from('{"temperature":21.5,"humidity":40}'))).toBeNull();
  });

  it('rejects arguments that do not fit the layout', () => {
    const buf = Buffer.alloc(STAMP_LENGTH);
    expect(() => writeStamp(Buffer.alloc(19), 0, 1, 1, 0, 0)).toThrow(RangeError);
    expect(() => writeStamp(buf, 1, 1, 1, 0, 0)).toThrow(RangeError);
    expect(() => writeStamp(buf, 0, -1, 1, 0, 0)).toThrow(RangeError);
    expect(() => writeStamp(buf, 0, 1, 2 ** 32, 0, 0)).toThrow(RangeError);
    expect(() => writeStamp(buf, 0, 1, 1, 3 as 0, 0)).toThrow(RangeError);
  });

  it('preciseNowMs is the wall clock with a sub-ms fraction', () => {
    const before = Date.now();
    const now = preciseNowMs();
    const after = Date.now();
    expect(now).toBeGreaterThanOrEqual(before - 5);
    expect(now).toBeLessThanOrEqual(after + 5);
    expect(preciseNowMs()).toBeGreaterThanOrEqual(now);
  });
});
