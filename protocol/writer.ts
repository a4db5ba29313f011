/** Low-level writers used by the encoders; each takes a position and returns the next one. */

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (n > 0);
  return pos;
}

/**
 * Strings up to this many UTF-16 units are measured and copied in a JavaScript loop; longer ones go
 * through the native UTF-8 routines, which win past about 16 characters (bench/codec).
 */
const SHORT_STRING = 16;

/**
 * Why `s` cannot be an MQTT UTF-8 string, or null: U+0000 and lone surrogates are not allowed
 * [MQTT-1.5.4-1], [MQTT-1.5.4-2] (a lone surrogate would silently become U+FFFD on the wire).
 */
export function utf8Problem(s: string): string | null {
  if (s.includes('\u0000')) return 'contains U+0000';
  return s.isWellFormed() ? null : 'contains a lone surrogate (not encodable as UTF-8)';
}

/** UTF-8 byte length of an MQTT string, or -1 when utf8Problem() has an objection. */
export function checkedUtf8Length(s: string): number {
  const n = s.length;
  if (n <= SHORT_STRING) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 0) return -1;
      if (c >= 0x80) break;
    }
    if (i === n) return n;
  }
  if (s.includes('\u0000') || !s.isWellFormed()) return -1;
  return Buffer.byteLength(s, 'utf8');
}

/** UTF-8 byte length without validation. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Writes a two-byte length prefix and the string's UTF-8 bytes. */
export function writeUtf8String(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n <= SHORT_STRING) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos + 2 + i] = c;
    }
    if (i === n) {
      buf[pos] = 0;
      buf[pos + 1] = n;
      return pos + 2 + n;
    }
  }
  const written = buf.utf8Write(s, pos + 2);
  buf[pos] = written >>> 8;
  buf[pos + 1] = written & 0xff;
  return pos + 2 + written;
}

declare module 'node:buffer' {
  interface Buffer {
    utf8Write(s: string, offset?: number, length?: number): number;
  }
}

export function writeBinary(buf: Buffer, pos: number, data: Buffer): number {
  buf[pos] = data.length >>> 8;
  buf[pos + 1] = data.length & 0xff;
  data.copy(buf, pos + 2);
  return pos + 2 + data.length;
}

export function writeU16(buf: Buffer, pos: number, n: number): number {
  buf[pos] = n >>> 8;
  buf[pos + 1] = n & 0xff;
  return pos + 2;
}
