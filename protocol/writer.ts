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
 * Why `s` cannot be an MQTT UTF-8 string, or null: U+0000 and lone surrogates are not allowed
 * [MQTT-1.5.4-1], [MQTT-1.5.4-2] (a lone surrogate would silently become U+FFFD on the wire).
 */
export function utf8Problem(s: string): string | null {
  const n = s.length;
  if (n < 64) {
    let plain = true;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 0) return 'contains U+0000';
      if (c >= 0xd800 && c <= 0xdfff) {
        plain = false;
        break;
      }
    }
    if (plain) return null;
  } else if (s.includes('\u0000')) {
    return 'contains U+0000';
  }
  return s.isWellFormed() ? null : 'contains a lone surrogate (not encodable as UTF-8)';
}

/** UTF-8 byte length, with a loop for short ASCII strings (the common topic) that avoids a native call. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n < 64) {
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
    }
    return n;
  }
  return Buffer.byteLength(s, 'utf8');
}

export function writeUtf8String(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  let ascii = n < 64;
  if (ascii) {
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
  }
  if (ascii) {
    buf[pos] = n >>> 8;
    buf[pos + 1] = n & 0xff;
    pos += 2;
    for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
    return pos + n;
  }
  const written = buf.write(s, pos + 2, 'utf8');
  buf[pos] = written >>> 8;
  buf[pos + 1] = written & 0xff;
  return pos + 2 + written;
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
