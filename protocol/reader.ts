/**
 * A bounds-checked cursor over one packet body. Every read that would run past `end` throws a
 * ProtocolError (0x81), so no RangeError can escape from a Buffer read.
 */
import { isUtf8 } from 'node:buffer';
import { malformed } from './errors.js';

export class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;

  reset(buf: Buffer, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  u8(what: string): number {
    if (this.pos >= this.end) throw malformed(`packet ends before ${what}`);
    return this.buf[this.pos++]!;
  }

  u16(what: string): number {
    const p = this.pos;
    if (p + 2 > this.end) throw malformed(`packet ends before ${what}`);
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32(what: string): number {
    const p = this.pos;
    if (p + 4 > this.end) throw malformed(`packet ends before ${what}`);
    this.pos = p + 4;
    return this.buf.readUInt32BE(p);
  }

  /** Variable Byte Integer: at most 4 bytes, minimally encoded [MQTT-1.5.5-1]. */
  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.end) throw malformed(`packet ends inside ${what}`);
      const byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw malformed(`${what} is not minimally encoded`);
        return value;
      }
      multiplier *= 128;
    }
    throw malformed(`${what} is longer than 4 bytes`);
  }

  /** Two-byte length prefix + bytes, returned without copying. */
  binary(what: string): Buffer {
    const len = this.u16(what);
    const p = this.pos;
    if (p + len > this.end) throw malformed(`${what} length ${len} exceeds the packet`);
    this.pos = p + len;
    return this.buf.subarray(p, p + len);
  }

  /** Two-byte length prefix + well-formed UTF-8 without U+0000 [MQTT-1.5.4-1], [MQTT-1.5.4-2]. */
  utf8(what: string): string {
    const len = this.u16(what);
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw malformed(`${what} length ${len} exceeds the packet`);
    this.pos = end;
    return decodeUtf8(this.buf, start, end, what);
  }
}

/**
 * Decodes a strict MQTT UTF-8 string. Short strings are checked byte by byte in JavaScript; longer ones
 * are decoded natively and only re-validated when the result shows non-ASCII content (a shorter string
 * than the byte count, or U+FFFD from an invalid sequence).
 */
export function decodeUtf8(buf: Buffer, start: number, end: number, what: string): string {
  const len = end - start;
  if (len <= 16) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b === 0) throw malformed(`${what} contains U+0000`);
      if (b >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return buf.latin1Slice(start, end);
  } else {
    const s = buf.utf8Slice(start, end);
    if (s.length === len && !s.includes('\uFFFD')) {
      if (s.includes('\u0000')) throw malformed(`${what} contains U+0000`);
      return s;
    }
  }
  const slice = buf.subarray(start, end);
  // isUtf8 rejects overlong forms, encoded surrogates (U+D800-U+DFFF) and code points past U+10FFFF.
  if (!isUtf8(slice)) throw malformed(`${what} is not well-formed UTF-8`);
  const s = slice.toString('utf8');
  if (s.includes('\u0000')) throw malformed(`${what} contains U+0000`);
  return s;
}

declare module 'node:buffer' {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    utf8Slice(start: number, end: number): string;
  }
}
