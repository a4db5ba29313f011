/**
 * Byte-level helpers of the robustness campaign, written independently of protocol/parser.ts so the
 * campaign's own view of the stream (where frames start, which protocol level a CONNECT names) does
 * not inherit the parser's bugs.
 */

/** Remaining-length bytes for `n` (MQTT Variable Byte Integer, minimal form) [MQTT-1.5.5-1]. */
export function varintBytes(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** A frame: first byte, minimal remaining length, body. */
export function frame(firstByte: number, body: Uint8Array): Buffer {
  const len = varintBytes(body.length);
  const out = Buffer.allocUnsafe(1 + len.length + body.length);
  out[0] = firstByte;
  for (let i = 0; i < len.length; i++) out[1 + i] = len[i]!;
  out.set(body, 1 + len.length);
  return out;
}

export interface SplitFrame {
  firstByte: number;
  /** Fixed header length (first byte + remaining length bytes). */
  headerLength: number;
  body: Buffer;
}

/** Splits a well-formed single frame (as encodePacket makes them) into header and body. */
export function splitFrame(buf: Buffer): SplitFrame {
  let i = 1;
  while ((buf[i]! & 0x80) !== 0) i++;
  return { firstByte: buf[0]!, headerLength: i + 1, body: buf.subarray(i + 1) };
}

export type FixedHeader =
  | { kind: 'ok'; headerLength: number; remaining: number }
  | { kind: 'incomplete' }
  /** Five or more length bytes: never a valid header. */
  | { kind: 'too-long' };

/** Reads the fixed header at `pos` without validating type or flags. */
export function readFixedHeader(buf: Uint8Array, pos: number): FixedHeader {
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (pos + i >= buf.length) return { kind: 'incomplete' };
    const b = buf[pos + i]!;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return { kind: 'ok', headerLength: i + 1, remaining: value };
    multiplier *= 128;
  }
  return { kind: 'too-long' };
}

export interface StreamScan {
  /** Whole frames from the start of the stream, as a receiver that accepts every frame would see them. */
  frames: number;
  /** How the stream ends: exactly after a frame, inside a frame, or at a header no receiver accepts. */
  end: 'boundary' | 'partial' | 'broken';
  /** Frames that are exactly a PINGREQ (C0 00). */
  pingreqs: number;
  /** Declared size of the first frame (header included), or -1 when its header is incomplete or broken. */
  firstFrameSize: number;
}

/**
 * Walks the frames of a byte stream. `maxPacketSize` is the receiver's limit: a frame declaring more
 * ends the walk as 'broken' (the receiver closes there).
 */
export function scanStream(buf: Uint8Array, maxPacketSize: number): StreamScan {
  let pos = 0;
  let frames = 0;
  let pingreqs = 0;
  let firstFrameSize = -1;
  while (pos < buf.length) {
    const h = readFixedHeader(buf, pos);
    if (h.kind === 'too-long') return { frames, end: 'broken', pingreqs, firstFrameSize };
    if (h.kind === 'incomplete') return { frames, end: 'partial', pingreqs, firstFrameSize };
    const size = h.headerLength + h.remaining;
    if (frames === 0) firstFrameSize = size;
    if (size > maxPacketSize) return { frames, end: 'broken', pingreqs, firstFrameSize };
    if (pos + size > buf.length) return { frames, end: 'partial', pingreqs, firstFrameSize };
    if (buf[pos] === 0xc0 && size === 2) pingreqs++;
    frames++;
    pos += size;
  }
  return { frames, end: 'boundary', pingreqs, firstFrameSize };
}

/**
 * The protocol level a stream's first frame announces when it is a CONNECT naming a known
 * (name, level) pair: 'MQIsdp' 3, 'MQTT' 4 or 'MQTT' 5. Anything else: undefined. A server can only
 * answer in the client's own version when it knows it, so this decides how to read the answer.
 */
export function announcedLevel(buf: Uint8Array): 3 | 4 | 5 | undefined {
  if (buf.length < 2 || buf[0]! >> 4 !== 1) return undefined;
  const h = readFixedHeader(buf, 0);
  if (h.kind !== 'ok') return undefined;
  const start = h.headerLength;
  const end = Math.min(buf.length, start + h.remaining);
  if (end - start < 3 || buf[start] !== 0) return undefined;
  const nameLength = buf[start + 1]!;
  const levelAt = start + 2 + nameLength;
  if (levelAt >= end) return undefined;
  const name = Buffer.from(buf.buffer, buf.byteOffset + start + 2, nameLength).toString('latin1');
  const level = buf[levelAt];
  if (name === 'MQTT' && (level === 4 || level === 5)) return level;
  if (name === 'MQIsdp' && level === 3) return 3;
  return undefined;
}

/** Hex of up to `max` bytes, for reports. */
export function hexPreview(buf: Uint8Array, max = 512): string {
  const shown = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, max)).toString('hex');
  return buf.length > max ? `${shown}… (${buf.length} bytes)` : shown;
}
