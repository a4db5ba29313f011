/**
 * The incremental packet parser: feed it chunks of any size, get complete packets back in order.
 *
 * Complete packets inside a chunk are decoded in place (payloads are views of the chunk, not copies).
 * A packet split across chunks is assembled once into a buffer of exactly its size; bytes already
 * consumed are never scanned again. The remaining length is checked against the maximum packet size
 * as soon as the fixed header is known, before any of the body is buffered.
 */
import { ProtocolError, malformed } from './errors.js';
import { checkFixedHeader, decodeBody } from './decoder.js';
import type { Packet, ProtocolVersion } from './packets.js';
import { Reader } from './reader.js';

export interface ParserOptions {
  /** Version used for packets before a CONNECT is seen; a CONNECT switches the parser to its own level. */
  protocolVersion?: ProtocolVersion;
  /** Largest whole packet (fixed header included) accepted, in bytes. Default: the protocol maximum. */
  maxPacketSize?: number;
}

const PROTOCOL_MAX_PACKET = 268_435_455 + 5;
const sharedReader = new Reader();

export class PacketParser {
  protocolVersion: ProtocolVersion;
  maxPacketSize: number;

  /**
   * Fixed header bytes of a packet whose header straddles chunks (at most 5). Allocated on first
   * need: a broker holds one parser per connection, most of them idle.
   */
  private headerBytes: Buffer | null = null;
  private get header(): Buffer {
    return (this.headerBytes ??= Buffer.alloc(5));
  }
  private headerLength = 0;
  /** Body of a packet that straddles chunks, and how much of it is filled. */
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private firstByte = 0;
  private failed: ProtocolError | null = null;

  constructor(options: ParserOptions = {}) {
    this.protocolVersion = options.protocolVersion ?? 4;
    this.maxPacketSize = options.maxPacketSize ?? PROTOCOL_MAX_PACKET;
  }

  /** True while part of a packet is buffered. */
  get hasPartialPacket(): boolean {
    return this.headerLength > 0 || this.body !== null;
  }

  /**
   * Packets the failing push completed before its violation. They were sent before the bad bytes, so
   * a receiver handles them first (a pipelined CONNECT is still answered) and then the error.
   */
  completedBeforeFailure: Packet[] = [];

  /**
   * Parses a chunk and returns the packets completed by it. Throws ProtocolError on the first
   * violation; the parser is unusable afterwards (every later push rethrows the same error).
   */
  push(chunk: Buffer): Packet[] {
    if (this.failed !== null) throw this.failed;
    const out: Packet[] = [];
    try {
      this.parse(chunk, out);
    } catch (err) {
      this.failed = err instanceof ProtocolError ? err : malformed(`undecodable packet (${String(err)})`);
      this.completedBeforeFailure = out;
      throw this.failed;
    }
    return out;
  }

  private parse(chunk: Buffer, out: Packet[]): void {
    const len = chunk.length;
    let pos = 0;

    if (this.headerLength > 0) {
      // A fixed header straddles chunks: take bytes until the remaining length is complete.
      while (pos < len) {
        this.header[this.headerLength++] = chunk[pos++]!;
        const remaining = this.remainingLengthOf(this.header, 0, this.headerLength);
        if (remaining === -1) continue;
        this.headerLength = 0;
        if (remaining === 0) {
          out.push(this.decode(this.header, this.firstByte, 0, 0));
          break;
        }
        this.body = Buffer.allocUnsafe(remaining);
        this.bodyFilled = 0;
        break;
      }
      if (pos >= len && this.headerLength > 0) return;
    }

    if (this.body !== null) {
      const body = this.body;
      const take = Math.min(body.length - this.bodyFilled, len - pos);
      chunk.copy(body, this.bodyFilled, pos, pos + take);
      this.bodyFilled += take;
      pos += take;
      if (this.bodyFilled < body.length) return;
      this.body = null;
      out.push(this.decode(body, this.firstByte, 0, body.length));
    }

    while (pos < len) {
      const headerStart = pos;
      const remaining = this.remainingLengthOf(chunk, headerStart, len);
      if (remaining === -1) {
        // Incomplete fixed header at the end of the chunk: keep its bytes for the next push.
        chunk.copy(this.header, 0, headerStart, len);
        this.headerLength = len - headerStart;
        return;
      }
      const bodyStart = headerStart + 1 + this.varintBytes;
      const bodyEnd = bodyStart + remaining;
      if (bodyEnd <= len) {
        out.push(this.decode(chunk, chunk[headerStart]!, bodyStart, bodyEnd));
        pos = bodyEnd;
        continue;
      }
      this.body = Buffer.allocUnsafe(remaining);
      chunk.copy(this.body, 0, bodyStart, len);
      this.bodyFilled = len - bodyStart;
      return;
    }
  }

  private varintBytes = 0;

  /**
   * Reads the fixed header at buf[start..end): returns the remaining length, or -1 when more bytes are
   * needed. Validates the first byte and the size limit as soon as they are known.
   */
  private remainingLengthOf(buf: Buffer, start: number, end: number): number {
    if (end - start < 1) return -1;
    const firstByte = buf[start]!;
    // Type and flags are rejected as soon as the first byte arrives, before any body is buffered.
    checkFixedHeader(firstByte, this.protocolVersion);
    this.firstByte = firstByte;
    let value = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4; i++) {
      if (start + i >= end) return -1;
      const byte = buf[start + i]!;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 1) throw malformed('remaining length is not minimally encoded');
        this.varintBytes = i;
        const total = 1 + i + value;
        if (total > this.maxPacketSize) {
          throw new ProtocolError(0x95, `packet of ${total} bytes exceeds the maximum packet size of ${this.maxPacketSize}`);
        }
        return value;
      }
      multiplier *= 128;
    }
    throw malformed('remaining length is longer than 4 bytes');
  }

  private decode(buf: Buffer, firstByte: number, start: number, end: number): Packet {
    // Decoding is synchronous, so every parser shares one cursor.
    const r = sharedReader;
    r.reset(buf, start, end);
    // A CONNECT states its level before anything later in it can be malformed: switch now, so an
    // error further in is reported in the client's own version (a v5 CONNACK with the reason code,
    // 5.0 section 4.13.1) rather than as if the client spoke the parser's previous level.
    if (firstByte >> 4 === 1) this.protocolVersion = connectLevel(buf, start, end) ?? this.protocolVersion;
    const packet = decodeBody(r, firstByte, this.protocolVersion);
    if (packet.type === 'connect') this.protocolVersion = packet.protocolVersion;
    return packet;
  }
}

/** The protocol level of a CONNECT body when its name and level are a known pair ('MQIsdp' 3, 'MQTT' 4 or 5). */
function connectLevel(buf: Buffer, start: number, end: number): ProtocolVersion | undefined {
  if (end - start < 7 || buf[start] !== 0) return undefined;
  const nameLength = buf[start + 1]!;
  if (start + 2 + nameLength >= end) return undefined;
  const name = buf.toString('latin1', start + 2, start + 2 + nameLength);
  const level = buf[start + 2 + nameLength];
  if (name === 'MQTT' && (level === 4 || level === 5)) return level;
  if (name === 'MQIsdp' && level === 3) return 3;
  return undefined;
}
