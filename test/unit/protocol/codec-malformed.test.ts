/**
 * Malformed input for the incremental parser (protocol/parser.ts + decoder.ts + reader.ts + properties.ts).
 *
 * 1. A corpus of exact byte sequences, one per rule, each asserting the ProtocolError reason code
 *    (0x81 Malformed Packet, 0x82 Protocol Error, 0x84 Unsupported Protocol Version, 0x90 Topic Name invalid,
 *    0x95 Packet too large). Every case is also replayed one byte per push, so the rule fires the same way
 *    when the packet straddles chunks.
 * 2. Fuzz properties: random bytes, mutated valid encodings and oversized frames, in random chunkings.
 *
 * Spec ids: MQTT 3.1.1 and 5.0 number some rules differently; where both exist both are given, marked
 * (3.1.1) / (5.0). Rules the specification states without an id are named by what they say.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PacketParser } from '../../../protocol/parser.js';
import { ProtocolError } from '../../../protocol/errors.js';
import { encodePacket } from '../../../protocol/encoder.js';
import type { Packet, ProtocolVersion } from '../../../protocol/packets.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/**
 * Hex bytes with `//` comments, one field per line: `hex\`30 // PUBLISH\n 05 // remaining length\``.
 * Anything but hex digits and blanks outside comments is an error, so a typo cannot silently change a case.
 */
function hex(strings: TemplateStringsArray): Buffer {
  const text = strings.raw.join('');
  let digits = '';
  for (const line of text.split('\n')) {
    const code = line.split('//')[0]!.replace(/\s+/g, '');
    if (!/^[0-9a-fA-F]*$/.test(code)) throw new Error(`bad hex in test corpus: '${line.trim()}'`);
    digits += code;
  }
  if (digits.length % 2 !== 0) throw new Error(`odd number of hex digits in test corpus: ${digits}`);
  return Buffer.from(digits, 'hex');
}

const code = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** Reads the fixed header independently of the parser: header length and remaining length, or null if unterminated. */
function fixedHeader(buf: ArrayLike<number>, start = 0): { headerLength: number; remaining: number } | null | 'too-long' {
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (start + i >= buf.length) return null;
    const b = buf[start + i]!;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return { headerLength: 1 + i, remaining: value };
    multiplier *= 128;
  }
  return 'too-long';
}

/** Calls fn and returns what it threw, failing the test when it returns normally. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a ProtocolError, but nothing was thrown');
}

function expectProtocolError(err: unknown, reasonCode: number, why?: RegExp): ProtocolError {
  expect(err).toBeInstanceOf(ProtocolError);
  const e = err as ProtocolError;
  expect(code(e.reasonCode), e.message).toBe(code(reasonCode));
  if (why !== undefined) expect(e.message).toMatch(why);
  return e;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. The corpus

interface MalformedCase {
  name: string;
  /** Version the parser starts with (a CONNECT switches it to its own level). */
  version: ProtocolVersion;
  maxPacketSize?: number;
  bytes: Buffer;
  reasonCode: number;
  /**
   * A fragment of the error message: checks that the intended rule fired, not another rule that happens
   * to share the reason code because the case was built wrong.
   */
  why: RegExp;
  /**
   * 'exact' (default): the bytes are exactly one packet (header + remaining length bytes), checked below.
   * 'header': only a fixed header (or a part of one); the parser must reject it without any body.
   */
  framing?: 'exact' | 'header';
}

const cases: MalformedCase[] = [
  // ----- Fixed header: remaining length -----------------------------------------------------------------------
  {
    name: 'remaining length with a 5th byte (continuation bit set on the 4th) → 0x81',
    version: 4, reasonCode: 0x81, why: /longer than 4 bytes/, framing: 'header',
    bytes: hex`
      30          // PUBLISH QoS 0
      FF FF FF FF // four length bytes, all with the continuation bit
      01          // a fifth length byte
    `,
  },
  {
    name: '[MQTT-1.5.5-1] remaining length 0 encoded in two bytes (80 00) → 0x81',
    version: 4, reasonCode: 0x81, why: /not minimally encoded/,
    bytes: hex`
      C0    // PINGREQ
      80 00 // remaining length 0, non-minimal
    `,
  },
  {
    name: '[MQTT-1.5.5-1] remaining length 3 encoded in two bytes (83 00) → 0x81',
    version: 4, reasonCode: 0x81, why: /not minimally encoded/,
    bytes: hex`
      30       // PUBLISH QoS 0
      83 00    // remaining length 3, non-minimal
      00 01 61 // topic 'a'
    `,
  },
  {
    name: '[MQTT-1.5.5-1] property length 0 encoded in two bytes (80 00) → 0x81',
    version: 5, reasonCode: 0x81, why: /property length is not minimally encoded/,
    bytes: hex`
      30       // PUBLISH QoS 0
      05       // remaining length 5
      00 01 61 // topic 'a'
      80 00    // property length 0, non-minimal
    `,
  },
  {
    name: '[MQTT-1.5.5-1] subscription identifier 1 encoded in two bytes (81 00) → 0x81',
    version: 5, reasonCode: 0x81, why: /subscriptionIdentifiers is not minimally encoded/,
    bytes: hex`
      82       // SUBSCRIBE
      0A       // remaining length 10
      00 01    // packet id 1
      03       // property length 3
      0B 81 00 // subscription identifier 1, non-minimal
      00 01 61 // filter 'a'
      00       // options: QoS 0
    `,
  },

  // ----- Fixed header: reserved flag bits of every non-PUBLISH type ---------------------------------------------
  {
    name: '[MQTT-2.2.2-2] (3.1.1) CONNECT with flags 0001 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 1/,
    bytes: hex`
      11                   // CONNECT, flags 0001 (must be 0000)
      0D                   // remaining length 13
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      02                   // connect flags: clean session
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) CONNACK with flags 1000 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 2/,
    bytes: hex`
      28    // CONNACK, flags 1000 (must be 0000)
      02    // remaining length 2
      00 00 // session present 0, return code 0
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) PUBACK with flags 0100 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 4/,
    bytes: hex`
      44    // PUBACK, flags 0100 (must be 0000)
      02    // remaining length 2
      00 01 // packet id 1
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) PUBREC with flags 0010 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 5/,
    bytes: hex`
      52    // PUBREC, flags 0010 (must be 0000)
      02    // remaining length 2
      00 01 // packet id 1
    `,
  },
  {
    name: '[MQTT-3.6.1-1] PUBREL with flags 0000 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 6/,
    bytes: hex`
      60    // PUBREL, flags 0000 (must be 0010)
      02    // remaining length 2
      00 01 // packet id 1
    `,
  },
  {
    name: '[MQTT-3.6.1-1] PUBREL with flags 0011 → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved flags of packet type 6/,
    bytes: hex`
      63    // PUBREL, flags 0011 (must be 0010)
      02    // remaining length 2
      00 01 // packet id 1
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) PUBCOMP with flags 0001 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 7/,
    bytes: hex`
      71    // PUBCOMP, flags 0001 (must be 0000)
      02    // remaining length 2
      00 01 // packet id 1
    `,
  },
  {
    name: '[MQTT-3.8.1-1] SUBSCRIBE with flags 0000 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 8/,
    bytes: hex`
      80       // SUBSCRIBE, flags 0000 (must be 0010)
      06       // remaining length 6
      00 01    // packet id 1
      00 01 61 // filter 'a'
      00       // requested QoS 0
    `,
  },
  {
    name: '[MQTT-3.8.1-1] SUBSCRIBE with flags 0011 → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved flags of packet type 8/,
    bytes: hex`
      83       // SUBSCRIBE, flags 0011 (must be 0010)
      07       // remaining length 7
      00 01    // packet id 1
      00       // property length 0
      00 01 61 // filter 'a'
      00       // options
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) SUBACK with flags 1000 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 9/,
    bytes: hex`
      98    // SUBACK, flags 1000 (must be 0000)
      03    // remaining length 3
      00 01 // packet id 1
      00    // granted QoS 0
    `,
  },
  {
    name: '[MQTT-3.10.1-1] UNSUBSCRIBE with flags 0000 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 10/,
    bytes: hex`
      A0       // UNSUBSCRIBE, flags 0000 (must be 0010)
      05       // remaining length 5
      00 01    // packet id 1
      00 01 61 // filter 'a'
    `,
  },
  {
    name: '[MQTT-3.10.1-1] UNSUBSCRIBE with flags 0110 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 10/,
    bytes: hex`
      A6       // UNSUBSCRIBE, flags 0110 (must be 0010)
      05       // remaining length 5
      00 01    // packet id 1
      00 01 61 // filter 'a'
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) UNSUBACK with flags 0010 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 11/,
    bytes: hex`
      B2    // UNSUBACK, flags 0010 (must be 0000)
      02    // remaining length 2
      00 01 // packet id 1
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) PINGREQ with flags 0001 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 12/,
    bytes: hex`
      C1 // PINGREQ, flags 0001 (must be 0000)
      00 // remaining length 0
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) PINGRESP with flags 1000 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 13/,
    bytes: hex`
      D8 // PINGRESP, flags 1000 (must be 0000)
      00 // remaining length 0
    `,
  },
  {
    name: '[MQTT-2.2.2-2] (3.1.1) DISCONNECT with flags 0010 → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved flags of packet type 14/,
    bytes: hex`
      E2 // DISCONNECT, flags 0010 (must be 0000)
      00 // remaining length 0
    `,
  },
  {
    name: '[MQTT-2.1.3-1] (5.0) AUTH with flags 0001 → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved flags of packet type 15/,
    bytes: hex`
      F1 // AUTH, flags 0001 (must be 0000)
      00 // remaining length 0
    `,
  },
  {
    name: '[MQTT-2.1.3-1] (5.0) DISCONNECT with flags 0100 → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved flags of packet type 14/,
    bytes: hex`
      E4 // DISCONNECT, flags 0100 (must be 0000)
      00 // remaining length 0
    `,
  },

  // ----- Fixed header: packet types and PUBLISH flags ---------------------------------------------------------
  {
    name: 'packet type 0 (reserved, forbidden) → 0x81',
    version: 4, reasonCode: 0x81, why: /packet type 0 is reserved/,
    bytes: hex`
      00 // type 0, flags 0000
      00 // remaining length 0
    `,
  },
  {
    name: 'packet type 0 (reserved, forbidden) under MQTT 5.0 → 0x81',
    version: 5, reasonCode: 0x81, why: /packet type 0 is reserved/,
    bytes: hex`
      00 // type 0, flags 0000
      00 // remaining length 0
    `,
  },
  {
    name: 'AUTH (type 15) under MQTT 3.1.1 → 0x81',
    version: 4, reasonCode: 0x81, why: /AUTH\) does not exist before MQTT 5/,
    bytes: hex`
      F0 // AUTH
      00 // remaining length 0
    `,
  },
  {
    name: '[MQTT-3.3.1-4] PUBLISH with QoS 3 → 0x81',
    version: 4, reasonCode: 0x81, why: /PUBLISH with QoS 3/,
    bytes: hex`
      36       // PUBLISH, flags 0110: QoS bits 11
      05       // remaining length 5
      00 01 61 // topic 'a'
      00 01    // packet id 1
    `,
  },
  {
    name: '[MQTT-3.3.1-4] PUBLISH with QoS 3, DUP and RETAIN under MQTT 5.0 → 0x81',
    version: 5, reasonCode: 0x81, why: /PUBLISH with QoS 3/,
    bytes: hex`
      3F       // PUBLISH, flags 1111: DUP, QoS bits 11, RETAIN
      06       // remaining length 6
      00 01 61 // topic 'a'
      00 01    // packet id 1
      00       // property length 0
    `,
  },
  {
    name: '[MQTT-3.3.1-2] PUBLISH with DUP=1 and QoS 0 → 0x81',
    version: 4, reasonCode: 0x81, why: /DUP set and QoS 0/,
    bytes: hex`
      38       // PUBLISH, flags 1000: DUP, QoS 0
      03       // remaining length 3
      00 01 61 // topic 'a'
    `,
  },

  // ----- CONNECT ------------------------------------------------------------------------------------------------
  {
    name: '[MQTT-3.1.2-3] CONNECT with the reserved flag set → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved CONNECT flag/,
    bytes: hex`
      10                   // CONNECT
      0D                   // remaining length 13
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      03                   // connect flags: clean session + reserved bit 0
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-3] CONNECT with the reserved flag set (MQTT 5.0) → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved CONNECT flag/,
    bytes: hex`
      10                   // CONNECT
      0E                   // remaining length 14
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      01                   // connect flags: reserved bit 0
      00 3C                // keep alive 60
      00                   // property length 0
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-13] (3.1.1) will QoS 1 without the will flag → 0x81',
    version: 4, reasonCode: 0x81, why: /without the will flag/,
    bytes: hex`
      10                   // CONNECT
      0D                   // remaining length 13
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      0A                   // connect flags: will QoS 1 (bits 4-3 = 01), clean session, will flag 0
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-15] (3.1.1) will retain without the will flag → 0x81',
    version: 4, reasonCode: 0x81, why: /without the will flag/,
    bytes: hex`
      10                   // CONNECT
      0D                   // remaining length 13
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      22                   // connect flags: will retain, clean session, will flag 0
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-11] (5.0) will QoS 2 without the will flag → 0x81',
    version: 5, reasonCode: 0x81, why: /without the will flag/,
    bytes: hex`
      10                   // CONNECT
      0E                   // remaining length 14
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      12                   // connect flags: will QoS 2 (bits 4-3 = 10), clean start, will flag 0
      00 3C                // keep alive 60
      00                   // property length 0
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-13] (5.0) will retain without the will flag → 0x81',
    version: 5, reasonCode: 0x81, why: /without the will flag/,
    bytes: hex`
      10                   // CONNECT
      0E                   // remaining length 14
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      20                   // connect flags: will retain, will flag 0
      00 3C                // keep alive 60
      00                   // property length 0
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-14] (3.1.1) will QoS 3 → 0x81',
    version: 4, reasonCode: 0x81, why: /will QoS 3/,
    bytes: hex`
      10                   // CONNECT
      12                   // remaining length 18
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      1E                   // connect flags: will QoS 3 (bits 4-3 = 11), will flag, clean session
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
      00 01 77             // will topic 'w'
      00 00                // will payload, empty
    `,
  },
  {
    name: '[MQTT-3.1.2-12] (5.0) will QoS 3 → 0x81',
    version: 5, reasonCode: 0x81, why: /will QoS 3/,
    bytes: hex`
      10                   // CONNECT
      14                   // remaining length 20
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      1E                   // connect flags: will QoS 3, will flag, clean start
      00 3C                // keep alive 60
      00                   // property length 0
      00 01 63             // client id 'c'
      00                   // will property length 0
      00 01 77             // will topic 'w'
      00 00                // will payload, empty
    `,
  },
  {
    name: '[MQTT-3.1.2-22] (3.1.1) password flag without the user name flag → 0x81',
    version: 4, reasonCode: 0x81, why: /password flag set without the user name flag/,
    bytes: hex`
      10                   // CONNECT
      10                   // remaining length 16
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      42                   // connect flags: password, clean session (no user name)
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
      00 01 70             // password 'p'
    `,
  },
  {
    name: "[MQTT-3.1.2-1] unknown protocol name 'MQTX' → 0x84",
    version: 4, reasonCode: 0x84, why: /unknown protocol name 'MQTX'/,
    bytes: hex`
      10                // CONNECT
      0D                // remaining length 13
      00 04 4D 51 54 58 // protocol name 'MQTX'
      04                // level 4
      02                // connect flags: clean session
      00 3C             // keep alive 60
      00 01 63          // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-2] unsupported protocol level 6 → 0x84',
    version: 4, reasonCode: 0x84, why: /protocol level 6 is not supported/,
    bytes: hex`
      10                // CONNECT
      0D                // remaining length 13
      00 04 4D 51 54 54 // protocol name 'MQTT'
      06                // level 6 (does not exist)
      02                // connect flags: clean session
      00 3C             // keep alive 60
      00 01 63          // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.2-2] protocol name MQIsdp with level 4 → 0x84',
    version: 4, reasonCode: 0x84, why: /MQIsdp needs protocol level 3/,
    bytes: hex`
      10                      // CONNECT
      0F                      // remaining length 15
      00 06 4D 51 49 73 64 70 // protocol name 'MQIsdp'
      04                      // level 4 (MQIsdp is level 3)
      02                      // connect flags: clean session
      00 3C                   // keep alive 60
      00 01 63                // client id 'c'
    `,
  },
  {
    name: '[MQTT-3.1.3-4] client identifier is not UTF-8 (lone continuation byte 80) → 0x81',
    version: 4, reasonCode: 0x81, why: /client identifier is not well-formed UTF-8/,
    bytes: hex`
      10                   // CONNECT
      0E                   // remaining length 14
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      02                   // connect flags: clean session
      00 3C                // keep alive 60
      00 02 63 80          // client id 'c' + 0x80 (continuation byte without a lead byte)
    `,
  },
  {
    name: '[MQTT-3.1.3-4] client identifier length runs past the packet end → 0x81',
    version: 4, reasonCode: 0x81, why: /client identifier length 9 exceeds the packet/,
    bytes: hex`
      10                   // CONNECT
      0D                   // remaining length 13
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      02                   // connect flags: clean session
      00 3C                // keep alive 60
      00 09 63             // client id: length 9, only 1 byte left
    `,
  },
  {
    name: "[MQTT-4.7.1-1] (3.1.1) / [MQTT-4.7.0-1] (5.0) wildcard '#' in the will topic → 0x90",
    version: 4, reasonCode: 0x90, why: /will topic 'a\/#' contains a wildcard/,
    bytes: hex`
      10                   // CONNECT
      14                   // remaining length 20
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      06                   // connect flags: will flag, clean session
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
      00 03 61 2F 23       // will topic 'a/#'
      00 00                // will payload, empty
    `,
  },
  {
    name: "[MQTT-4.7.0-1] (5.0) wildcard '+' in the will topic → 0x90",
    version: 5, reasonCode: 0x90, why: /will topic '\+\/b' contains a wildcard/,
    bytes: hex`
      10                   // CONNECT
      16                   // remaining length 22
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      06                   // connect flags: will flag, clean start
      00 3C                // keep alive 60
      00                   // property length 0
      00 01 63             // client id 'c'
      00                   // will property length 0
      00 03 2B 2F 62       // will topic '+/b'
      00 00                // will payload, empty
    `,
  },
  {
    name: 'receiveMaximum 0 in CONNECT → 0x82',
    version: 5, reasonCode: 0x82, why: /receiveMaximum must not be 0/,
    bytes: hex`
      10                   // CONNECT
      11                   // remaining length 17
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      02                   // connect flags: clean start
      00 3C                // keep alive 60
      03                   // property length 3
      21 00 00             // receive maximum (0x21) = 0
      00 01 63             // client id 'c'
    `,
  },
  {
    name: 'maximumPacketSize 0 in CONNECT → 0x82',
    version: 5, reasonCode: 0x82, why: /maximumPacketSize must not be 0/,
    bytes: hex`
      10                   // CONNECT
      13                   // remaining length 19
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      02                   // connect flags: clean start
      00 3C                // keep alive 60
      05                   // property length 5
      27 00 00 00 00       // maximum packet size (0x27) = 0
      00 01 63             // client id 'c'
    `,
  },
  {
    name: 'property not allowed in CONNECT (topicAlias 0x23) → 0x81 (5.0 section 2.2.2.2)',
    version: 5, reasonCode: 0x81, why: /topicAlias \(0x23\) is not allowed in CONNECT/,
    bytes: hex`
      10                   // CONNECT
      11                   // remaining length 17
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      02                   // connect flags: clean start
      00 3C                // keep alive 60
      03                   // property length 3
      23 00 01             // topic alias (0x23) = 1: PUBLISH only
      00 01 63             // client id 'c'
    `,
  },
  {
    name: '[MQTT-1.5.7-1] user property name in CONNECT is not UTF-8 → 0x81',
    version: 5, reasonCode: 0x81, why: /user property name is not well-formed UTF-8/,
    bytes: hex`
      10                   // CONNECT
      15                   // remaining length 21
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      02                   // connect flags: clean start
      00 3C                // keep alive 60
      07                   // property length 7
      26                   // user property (0x26)
      00 01 FE             //   name: 0xFE (never valid in UTF-8)
      00 01 76             //   value 'v'
      00 01 63             // client id 'c'
    `,
  },

  // ----- UTF-8 strings in PUBLISH --------------------------------------------------------------------------------
  {
    name: '[MQTT-3.3.2-1] / [MQTT-1.5.3-1] (3.1.1) topic name with byte FF → 0x81',
    version: 4, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30          // PUBLISH QoS 0
      04          // remaining length 4
      00 02 61 FF // topic 'a' + 0xFF
    `,
  },
  {
    name: "[MQTT-1.5.3-1] (3.1.1) overlong 2-byte encoding of '/' (C0 AF) in the topic → 0x81",
    version: 4, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30             // PUBLISH QoS 0
      05             // remaining length 5
      00 03 61 C0 AF // topic 'a' + overlong '/'
    `,
  },
  {
    name: "[MQTT-1.5.4-1] (5.0) overlong 3-byte encoding of '/' (E0 80 AF) in the topic → 0x81",
    version: 5, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30                // PUBLISH QoS 0
      07                // remaining length 7
      00 04 61 E0 80 AF // topic 'a' + overlong '/'
      00                // property length 0
    `,
  },
  {
    name: '[MQTT-1.5.4-1] (5.0) overlong encoding of U+0000 (C0 80) in the topic → 0x81',
    version: 5, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30             // PUBLISH QoS 0
      06             // remaining length 6
      00 03 61 C0 80 // topic 'a' + overlong NUL
      00             // property length 0
    `,
  },
  {
    name: '[MQTT-1.5.4-1] (5.0) UTF-8-encoded surrogate U+D800 (ED A0 80) in the topic → 0x81',
    version: 5, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30             // PUBLISH QoS 0
      06             // remaining length 6
      00 03 ED A0 80 // topic: U+D800 encoded as UTF-8 (a surrogate)
      00             // property length 0
    `,
  },
  {
    name: '[MQTT-1.5.3-1] (3.1.1) UTF-8-encoded surrogate U+DFFF (ED BF BF) in the topic → 0x81',
    version: 4, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30                // PUBLISH QoS 0
      06                // remaining length 6
      00 04 61 ED BF BF // topic 'a' + U+DFFF encoded as UTF-8
    `,
  },
  {
    name: '[MQTT-1.5.4-1] (5.0) code point above U+10FFFF (F4 90 80 80) in the topic → 0x81',
    version: 5, reasonCode: 0x81, why: /topic name is not well-formed UTF-8/,
    bytes: hex`
      30                // PUBLISH QoS 0
      07                // remaining length 7
      00 04 F4 90 80 80 // topic: U+110000
      00                // property length 0
    `,
  },
  {
    name: '[MQTT-1.5.3-2] (3.1.1) U+0000 in the topic → 0x81',
    version: 4, reasonCode: 0x81, why: /topic name contains U\+0000/,
    bytes: hex`
      30             // PUBLISH QoS 0
      05             // remaining length 5
      00 03 61 00 62 // topic 'a' NUL 'b'
    `,
  },
  {
    name: '[MQTT-1.5.4-2] (5.0) U+0000 after a non-ASCII character in the topic → 0x81',
    version: 5, reasonCode: 0x81, why: /topic name contains U\+0000/,
    bytes: hex`
      30                // PUBLISH QoS 0
      07                // remaining length 7
      00 04 C3 A9 00 62 // topic 'é' NUL 'b'
      00                // property length 0
    `,
  },
  {
    name: 'topic length runs past the packet end → 0x81',
    version: 4, reasonCode: 0x81, why: /topic name length 5 exceeds the packet/,
    bytes: hex`
      30          // PUBLISH QoS 0
      04          // remaining length 4
      00 05 61 62 // topic: length 5, only 2 bytes follow
    `,
  },
  {
    name: '[MQTT-3.3.2-2] wildcard \'+\' in a PUBLISH topic name → 0x90',
    version: 4, reasonCode: 0x90, why: /topic name 'a\/\+' contains a wildcard/,
    bytes: hex`
      30             // PUBLISH QoS 0
      05             // remaining length 5
      00 03 61 2F 2B // topic 'a/+'
    `,
  },
  {
    name: '[MQTT-3.3.2-2] wildcard \'#\' in a PUBLISH topic name (MQTT 5.0) → 0x90',
    version: 5, reasonCode: 0x90, why: /topic name 'a\/#' contains a wildcard/,
    bytes: hex`
      30             // PUBLISH QoS 0
      06             // remaining length 6
      00 03 61 2F 23 // topic 'a/#'
      00             // property length 0
    `,
  },
  {
    name: '[MQTT-4.7.3-1] (3.1.1) empty topic name → 0x82',
    version: 4, reasonCode: 0x82, why: /empty topic name/,
    bytes: hex`
      30    // PUBLISH QoS 0
      02    // remaining length 2
      00 00 // topic '' (length 0)
    `,
  },
  {
    name: '(5.0) empty topic name without a topic alias → 0x82',
    version: 5, reasonCode: 0x82, why: /empty topic name and no topic alias/,
    bytes: hex`
      30    // PUBLISH QoS 0
      03    // remaining length 3
      00 00 // topic '' (length 0)
      00    // property length 0
    `,
  },
  {
    name: '[MQTT-2.3.1-1] (3.1.1) PUBLISH QoS 1 with packet identifier 0 → 0x82',
    version: 4, reasonCode: 0x82, why: /PUBLISH with packet identifier 0/,
    bytes: hex`
      32       // PUBLISH QoS 1
      05       // remaining length 5
      00 01 61 // topic 'a'
      00 00    // packet id 0
    `,
  },
  {
    name: '[MQTT-2.2.1-3] (5.0) PUBLISH QoS 2 with packet identifier 0 → 0x82',
    version: 5, reasonCode: 0x82, why: /PUBLISH with packet identifier 0/,
    bytes: hex`
      34       // PUBLISH QoS 2
      06       // remaining length 6
      00 01 61 // topic 'a'
      00 00    // packet id 0
      00       // property length 0
    `,
  },

  // ----- MQTT 5.0 properties (in PUBLISH unless noted) ------------------------------------------------------
  {
    name: 'duplicate property (payloadFormatIndicator twice) → 0x82',
    version: 5, reasonCode: 0x82, why: /payloadFormatIndicator appears more than once/,
    bytes: hex`
      30       // PUBLISH QoS 0
      08       // remaining length 8
      00 01 61 // topic 'a'
      04       // property length 4
      01 00    // payload format indicator (0x01) = 0
      01 01    // payload format indicator (0x01) = 1, again
    `,
  },
  {
    name: 'duplicate property (topicAlias twice) → 0x82',
    version: 5, reasonCode: 0x82, why: /topicAlias appears more than once/,
    bytes: hex`
      30       // PUBLISH QoS 0
      0A       // remaining length 10
      00 01 61 // topic 'a'
      06       // property length 6
      23 00 01 // topic alias (0x23) = 1
      23 00 02 // topic alias (0x23) = 2, again
    `,
  },
  {
    name: 'property not allowed in PUBLISH (sessionExpiryInterval 0x11) → 0x81 (5.0 section 2.2.2.2)',
    version: 5, reasonCode: 0x81, why: /sessionExpiryInterval \(0x11\) is not allowed in PUBLISH/,
    bytes: hex`
      30             // PUBLISH QoS 0
      09             // remaining length 9
      00 01 61       // topic 'a'
      05             // property length 5
      11 00 00 00 0A // session expiry interval (0x11) = 10: CONNECT, CONNACK, DISCONNECT only
    `,
  },
  {
    name: 'property not allowed in PUBACK (contentType 0x03) → 0x81 (5.0 section 2.2.2.2)',
    version: 5, reasonCode: 0x81, why: /contentType \(0x3\) is not allowed in PUBACK/,
    bytes: hex`
      40       // PUBACK
      08       // remaining length 8
      00 01    // packet id 1
      00       // reason code 0x00
      04       // property length 4
      03 00 01 78 // content type (0x03) 'x': PUBLISH and will only
    `,
  },
  {
    name: 'unknown property identifier 0x04 → 0x81',
    version: 5, reasonCode: 0x81, why: /unknown property identifier 0x4/,
    bytes: hex`
      30       // PUBLISH QoS 0
      06       // remaining length 6
      00 01 61 // topic 'a'
      02       // property length 2
      04 00    // property 0x04 (not defined) with a byte
    `,
  },
  {
    name: 'unknown property identifier 0x80 (two-byte varint 80 01) → 0x81',
    version: 5, reasonCode: 0x81, why: /unknown property identifier 0x80/,
    bytes: hex`
      30       // PUBLISH QoS 0
      07       // remaining length 7
      00 01 61 // topic 'a'
      03       // property length 3
      80 01 00 // property identifier 128, then a byte
    `,
  },
  {
    name: 'property length runs past the packet end → 0x81',
    version: 5, reasonCode: 0x81, why: /property length 10 exceeds the remaining 2 bytes/,
    bytes: hex`
      30       // PUBLISH QoS 0
      06       // remaining length 6
      00 01 61 // topic 'a'
      0A       // property length 10, only 2 bytes follow
      01 00    // payload format indicator (0x01) = 0
    `,
  },
  {
    name: 'property value runs past the end of the property block → 0x81',
    version: 5, reasonCode: 0x81, why: /packet ends before messageExpiryInterval/,
    bytes: hex`
      30                // PUBLISH QoS 0
      0A                // remaining length 10
      00 01 61          // topic 'a'
      02                // property length 2
      02 00             // message expiry interval (0x02): a four-byte value, only 1 byte inside the block
      00 00 00 61       // payload (not part of the property block)
    `,
  },
  {
    name: 'boolean property with value 2 (payloadFormatIndicator) → 0x82',
    version: 5, reasonCode: 0x82, why: /payloadFormatIndicator must be 0 or 1, got 2/,
    bytes: hex`
      30       // PUBLISH QoS 0
      06       // remaining length 6
      00 01 61 // topic 'a'
      02       // property length 2
      01 02    // payload format indicator (0x01) = 2
    `,
  },
  {
    name: '[MQTT-3.3.2-8] (5.0) topicAlias 0 → 0x82',
    version: 5, reasonCode: 0x82, why: /topicAlias must not be 0/,
    bytes: hex`
      30       // PUBLISH QoS 0
      07       // remaining length 7
      00 01 61 // topic 'a'
      03       // property length 3
      23 00 00 // topic alias (0x23) = 0
    `,
  },
  {
    name: '[MQTT-1.5.7-1] user property value in PUBLISH is not UTF-8 (C3 28) → 0x81',
    version: 5, reasonCode: 0x81, why: /user property value is not well-formed UTF-8/,
    bytes: hex`
      30          // PUBLISH QoS 0
      0C          // remaining length 12
      00 01 61    // topic 'a'
      08          // property length 8
      26          // user property (0x26)
      00 01 6B    //   name 'k'
      00 02 C3 28 //   value: C3 needs a continuation byte, 28 is not one
    `,
  },
  {
    name: 'subscriptionIdentifier 0 in SUBSCRIBE → 0x82',
    version: 5, reasonCode: 0x82, why: /subscription identifier must not be 0/,
    bytes: hex`
      82       // SUBSCRIBE
      09       // remaining length 9
      00 01    // packet id 1
      02       // property length 2
      0B 00    // subscription identifier (0x0B) = 0
      00 01 61 // filter 'a'
      00       // options: QoS 0
    `,
  },
  {
    name: 'subscriptionIdentifier 0 in PUBLISH → 0x82',
    version: 5, reasonCode: 0x82, why: /subscription identifier must not be 0/,
    bytes: hex`
      30       // PUBLISH QoS 0
      06       // remaining length 6
      00 01 61 // topic 'a'
      02       // property length 2
      0B 00    // subscription identifier (0x0B) = 0
    `,
  },

  // ----- Packet identifiers ------------------------------------------------------------------------------------
  {
    name: '[MQTT-2.3.1-1] (3.1.1) SUBSCRIBE with packet identifier 0 → 0x82',
    version: 4, reasonCode: 0x82, why: /SUBSCRIBE with packet identifier 0/,
    bytes: hex`
      82       // SUBSCRIBE
      06       // remaining length 6
      00 00    // packet id 0
      00 01 61 // filter 'a'
      00       // requested QoS 0
    `,
  },
  {
    name: '[MQTT-2.3.1-1] (3.1.1) UNSUBSCRIBE with packet identifier 0 → 0x82',
    version: 4, reasonCode: 0x82, why: /UNSUBSCRIBE with packet identifier 0/,
    bytes: hex`
      A2       // UNSUBSCRIBE
      05       // remaining length 5
      00 00    // packet id 0
      00 01 61 // filter 'a'
    `,
  },
  {
    name: 'PUBACK with packet identifier 0 → 0x82',
    version: 4, reasonCode: 0x82, why: /PUBACK with packet identifier 0/,
    bytes: hex`
      40    // PUBACK
      02    // remaining length 2
      00 00 // packet id 0
    `,
  },
  {
    name: 'PUBREL with packet identifier 0 (MQTT 5.0) → 0x82',
    version: 5, reasonCode: 0x82, why: /PUBREL with packet identifier 0/,
    bytes: hex`
      62    // PUBREL
      02    // remaining length 2
      00 00 // packet id 0
    `,
  },

  // ----- SUBSCRIBE / UNSUBSCRIBE payloads -----------------------------------------------------------------
  {
    name: '[MQTT-3.8.3-3] (3.1.1) SUBSCRIBE with no topic filters → 0x82',
    version: 4, reasonCode: 0x82, why: /SUBSCRIBE without topic filters/,
    bytes: hex`
      82    // SUBSCRIBE
      02    // remaining length 2
      00 01 // packet id 1, then nothing
    `,
  },
  {
    name: '[MQTT-3.8.3-2] (5.0) SUBSCRIBE with no topic filters → 0x82',
    version: 5, reasonCode: 0x82, why: /SUBSCRIBE without topic filters/,
    bytes: hex`
      82    // SUBSCRIBE
      03    // remaining length 3
      00 01 // packet id 1
      00    // property length 0, then nothing
    `,
  },
  {
    name: '[MQTT-3-8.3-4] (3.1.1) SUBSCRIBE requested QoS 3 → 0x81',
    version: 4, reasonCode: 0x81, why: /asks for QoS 3/,
    bytes: hex`
      82       // SUBSCRIBE
      06       // remaining length 6
      00 01    // packet id 1
      00 01 61 // filter 'a'
      03       // requested QoS 3
    `,
  },
  {
    name: '(5.0 §3.8.3.1) SUBSCRIBE maximum QoS 3 → 0x82 ("It is a Protocol Error if the Maximum QoS field has the value 3")',
    version: 5, reasonCode: 0x82, why: /asks for QoS 3/,
    bytes: hex`
      82       // SUBSCRIBE
      07       // remaining length 7
      00 01    // packet id 1
      00       // property length 0
      00 01 61 // filter 'a'
      03       // options: maximum QoS 3
    `,
  },
  {
    name: '[MQTT-3-8.3-4] (3.1.1) SUBSCRIBE requested-QoS byte with reserved bit 2 set → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved bits of the requested QoS byte/,
    bytes: hex`
      82       // SUBSCRIBE
      06       // remaining length 6
      00 01    // packet id 1
      00 01 61 // filter 'a'
      04       // requested QoS byte 00000100: a reserved bit (no local exists only in 5.0)
    `,
  },
  {
    name: '[MQTT-3-8.3-4] (3.1.1) SUBSCRIBE requested-QoS byte with reserved bit 7 set, in the 2nd filter → 0x81',
    version: 4, reasonCode: 0x81, why: /reserved bits of the requested QoS byte/,
    bytes: hex`
      82       // SUBSCRIBE
      0A       // remaining length 10
      00 01    // packet id 1
      00 01 61 // filter 'a'
      01       // requested QoS 1
      00 01 62 // filter 'b'
      81       // requested QoS byte 10000001: reserved bit 7
    `,
  },
  {
    name: '[MQTT-3.8.3-5] (5.0) subscription options with reserved bit 6 set → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved subscription option bits/,
    bytes: hex`
      82       // SUBSCRIBE
      07       // remaining length 7
      00 01    // packet id 1
      00       // property length 0
      00 01 61 // filter 'a'
      40       // options 01000000: reserved bit 6
    `,
  },
  {
    name: '[MQTT-3.8.3-5] (5.0) subscription options with reserved bit 7 set → 0x81',
    version: 5, reasonCode: 0x81, why: /reserved subscription option bits/,
    bytes: hex`
      82       // SUBSCRIBE
      07       // remaining length 7
      00 01    // packet id 1
      00       // property length 0
      00 01 61 // filter 'a'
      81       // options 10000001: reserved bit 7, QoS 1
    `,
  },
  {
    name: '(5.0) subscription options with retain handling 3 → 0x82',
    version: 5, reasonCode: 0x82, why: /retain handling 3/,
    bytes: hex`
      82       // SUBSCRIBE
      07       // remaining length 7
      00 01    // packet id 1
      00       // property length 0
      00 01 61 // filter 'a'
      30       // options 00110000: retain handling 3
    `,
  },
  {
    name: 'SUBSCRIBE with a topic filter but no options byte → 0x81',
    version: 4, reasonCode: 0x81, why: /packet ends before subscription options/,
    bytes: hex`
      82       // SUBSCRIBE
      05       // remaining length 5
      00 01    // packet id 1
      00 01 61 // filter 'a', then no options byte
    `,
  },
  {
    name: '[MQTT-3.10.3-2] UNSUBSCRIBE with no topic filters → 0x82',
    version: 4, reasonCode: 0x82, why: /UNSUBSCRIBE without topic filters/,
    bytes: hex`
      A2    // UNSUBSCRIBE
      02    // remaining length 2
      00 01 // packet id 1, then nothing
    `,
  },
  {
    name: '[MQTT-3.10.3-2] (5.0) UNSUBSCRIBE with no topic filters → 0x82',
    version: 5, reasonCode: 0x82, why: /UNSUBSCRIBE without topic filters/,
    bytes: hex`
      A2    // UNSUBSCRIBE
      03    // remaining length 3
      00 01 // packet id 1
      00    // property length 0, then nothing
    `,
  },

  // ----- Bodies longer than their packet type allows --------------------------------------------------------
  {
    name: 'PINGREQ with remaining length 1 → 0x81',
    version: 4, reasonCode: 0x81, why: /unexpected bytes at the end of PINGREQ/,
    bytes: hex`
      C0 // PINGREQ
      01 // remaining length 1
      00 // a body byte PINGREQ does not have
    `,
  },
  {
    name: 'PINGRESP with remaining length 2 (MQTT 5.0) → 0x81',
    version: 5, reasonCode: 0x81, why: /unexpected bytes at the end of PINGRESP/,
    bytes: hex`
      D0    // PINGRESP
      02    // remaining length 2
      00 00 // body bytes PINGRESP does not have
    `,
  },
  {
    name: '(3.1.1) PUBACK with a trailing byte after the packet identifier → 0x81',
    version: 4, reasonCode: 0x81, why: /1 unexpected bytes at the end of PUBACK/,
    bytes: hex`
      40    // PUBACK
      03    // remaining length 3
      00 01 // packet id 1
      00    // trailing byte (a reason code exists only in 5.0)
    `,
  },
  {
    name: '(3.1.1) DISCONNECT with a body → 0x81',
    version: 4, reasonCode: 0x81, why: /unexpected bytes at the end of DISCONNECT/,
    bytes: hex`
      E0 // DISCONNECT
      01 // remaining length 1
      00 // trailing byte (a reason code exists only in 5.0)
    `,
  },
  {
    name: '(3.1.1) CONNACK with a trailing byte → 0x81',
    version: 4, reasonCode: 0x81, why: /unexpected bytes at the end of CONNACK/,
    bytes: hex`
      20       // CONNACK
      03       // remaining length 3
      00 00    // flags 0, return code 0
      00       // trailing byte (properties exist only in 5.0)
    `,
  },
  {
    name: 'CONNECT with a trailing byte after the last field → 0x81',
    version: 4, reasonCode: 0x81, why: /unexpected bytes at the end of CONNECT/,
    bytes: hex`
      10                   // CONNECT
      0E                   // remaining length 14
      00 04 4D 51 54 54 04 // 'MQTT' level 4
      02                   // connect flags: clean session
      00 3C                // keep alive 60
      00 01 63             // client id 'c'
      FF                   // trailing byte: no flag announces another field
    `,
  },
  {
    name: '(5.0) PUBACK with a trailing byte after an empty property block → 0x81',
    version: 5, reasonCode: 0x81, why: /unexpected bytes at the end of PUBACK/,
    bytes: hex`
      40    // PUBACK
      05    // remaining length 5
      00 01 // packet id 1
      10    // reason code 0x10 No matching subscribers
      00    // property length 0
      FF    // trailing byte
    `,
  },

  // ----- MQTT 5.0 reason codes -------------------------------------------------------------------------------
  {
    name: '[MQTT-3.4.2-1] (5.0) PUBACK reason code 0x04 (a DISCONNECT-only code) → 0x82',
    version: 5, reasonCode: 0x82, why: /reason code 0x04 is not valid in PUBACK/,
    bytes: hex`
      40    // PUBACK
      03    // remaining length 3
      00 01 // packet id 1
      04    // reason code 0x04 Disconnect with Will Message
    `,
  },
  {
    name: '(5.0) PUBREL reason code 0x10 (a PUBACK/PUBREC-only code) → 0x82',
    version: 5, reasonCode: 0x82, why: /reason code 0x10 is not valid in PUBREL/,
    bytes: hex`
      62    // PUBREL
      03    // remaining length 3
      00 01 // packet id 1
      10    // reason code 0x10 No matching subscribers
    `,
  },
  {
    name: '(5.0) SUBACK reason code 0x03 (no such code) → 0x82',
    version: 5, reasonCode: 0x82, why: /reason code 0x03 is not valid in SUBACK/,
    bytes: hex`
      90    // SUBACK
      05    // remaining length 5
      00 01 // packet id 1
      00    // property length 0
      00    // reason code 0x00 Granted QoS 0
      03    // reason code 0x03 (undefined)
    `,
  },
  {
    name: '(5.0) DISCONNECT reason code 0x01 (a SUBACK-only code) → 0x82',
    version: 5, reasonCode: 0x82, why: /reason code 0x01 is not valid in DISCONNECT/,
    bytes: hex`
      E0 // DISCONNECT
      01 // remaining length 1
      01 // reason code 0x01 Granted QoS 1
    `,
  },
  {
    name: '(3.1.1) SUBACK return code 0x03 → 0x82',
    version: 4, reasonCode: 0x82, why: /reason code 0x03 is not valid in SUBACK/,
    bytes: hex`
      90    // SUBACK
      03    // remaining length 3
      00 01 // packet id 1
      03    // return code 3 (3.1.1 allows 0, 1, 2, 0x80)
    `,
  },

  // ----- Maximum packet size ---------------------------------------------------------------------------------
  {
    name: 'packet of 1025 bytes with maxPacketSize 1024 → 0x95, from the fixed header alone',
    version: 4, maxPacketSize: 1024, reasonCode: 0x95, why: /1025 bytes exceeds the maximum packet size of 1024/,
    framing: 'header',
    bytes: hex`
      30    // PUBLISH QoS 0
      FE 07 // remaining length 1022 (0x7E + 7 * 128): 1 + 2 + 1022 = 1025 bytes in all
    `,
  },
  {
    name: 'packet with a 4-byte remaining length (268435455) and maxPacketSize 1024 → 0x95, from the fixed header alone',
    version: 5, maxPacketSize: 1024, reasonCode: 0x95, why: /exceeds the maximum packet size of 1024/,
    framing: 'header',
    bytes: hex`
      32          // PUBLISH QoS 1
      FF FF FF 7F // remaining length 268435455, the largest there is
    `,
  },
];

describe('malformed-input corpus', () => {
  it('the corpus is well formed: one case per name, and every body matches its remaining length', () => {
    const names = new Set<string>();
    for (const c of cases) {
      expect(names.has(c.name), `duplicate case name: ${c.name}`).toBe(false);
      names.add(c.name);
      const header = fixedHeader(c.bytes);
      if ((c.framing ?? 'exact') === 'exact') {
        expect(header, c.name).not.toBeNull();
        expect(header, c.name).not.toBe('too-long');
        const { headerLength, remaining } = header as { headerLength: number; remaining: number };
        expect(headerLength + remaining, `${c.name}: remaining length vs bytes`).toBe(c.bytes.length);
      } else if (header !== null && header !== 'too-long') {
        // A header-only case is exactly its fixed header, with no body byte.
        expect(header.headerLength, c.name).toBe(c.bytes.length);
      }
    }
    expect(cases.length).toBeGreaterThanOrEqual(80);
  });

  for (const c of cases) {
    describe(c.name, () => {
      const options = { protocolVersion: c.version, maxPacketSize: c.maxPacketSize };

      it('whole packet in one push', () => {
        const parser = new PacketParser(options);
        expectProtocolError(thrown(() => parser.push(c.bytes)), c.reasonCode, c.why);
      });

      it('one byte per push', () => {
        const parser = new PacketParser(options);
        let error: unknown;
        let failedAt = -1;
        for (let i = 0; i < c.bytes.length; i++) {
          let out: Packet[];
          try {
            out = parser.push(c.bytes.subarray(i, i + 1));
          } catch (err) {
            error = err;
            failedAt = i;
            break;
          }
          expect(out, `a packet was returned at byte ${i}`).toEqual([]);
        }
        expectProtocolError(error, c.reasonCode, c.why);
        // A rule fires either on a fixed-header byte or once the body is complete, never in the middle of a body.
        const header = fixedHeader(c.bytes);
        const headerLength = header === null || header === 'too-long' ? c.bytes.length : header.headerLength;
        expect(failedAt < headerLength || failedAt === c.bytes.length - 1, `failed at byte ${failedAt}`).toBe(true);
      });
    });
  }
});

describe('header rules fire on the first byte', () => {
  const expectedFlags = (type: number): number => (type === 6 || type === 8 || type === 10 ? 0b0010 : 0b0000);

  it('[MQTT-2.2.2-2] (3.1.1) / [MQTT-2.1.3-1] (5.0) every wrong flag nibble of every non-PUBLISH type → 0x81 on the first byte alone', () => {
    let checked = 0;
    for (const version of [4, 5] as const) {
      for (let type = 1; type <= 15; type++) {
        if (type === 3) continue;
        if (type === 15 && version === 4) continue; // AUTH does not exist in 3.1.1 (its own case above)
        for (let flags = 0; flags < 16; flags++) {
          const first = (type << 4) | flags;
          const parser = new PacketParser({ protocolVersion: version });
          if (flags === expectedFlags(type)) {
            expect(parser.push(Buffer.from([first]))).toEqual([]);
            expect(parser.hasPartialPacket).toBe(true);
          } else {
            expectProtocolError(thrown(() => parser.push(Buffer.from([first]))), 0x81, /reserved flags/);
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(2 * 13 * 15 + 15);
  });

  it('PUBLISH: QoS 3 (with any DUP/RETAIN) and DUP with QoS 0 → 0x81 on the first byte alone; the other 10 flag values are accepted', () => {
    for (const version of [4, 5] as const) {
      for (let flags = 0; flags < 16; flags++) {
        const qos = (flags >> 1) & 3;
        const dup = (flags & 0x08) !== 0;
        const parser = new PacketParser({ protocolVersion: version });
        const push = (): unknown => parser.push(Buffer.from([0x30 | flags]));
        if (qos === 3) expectProtocolError(thrown(push), 0x81, /QoS 3/);
        else if (dup && qos === 0) expectProtocolError(thrown(push), 0x81, /DUP set and QoS 0/);
        else expect(push()).toEqual([]);
      }
    }
  });

  it('packet type 0 and (in 3.1.1) type 15 → 0x81 on the first byte alone', () => {
    expectProtocolError(thrown(() => new PacketParser({ protocolVersion: 5 }).push(Buffer.from([0x00]))), 0x81, /type 0/);
    expectProtocolError(thrown(() => new PacketParser({ protocolVersion: 4 }).push(Buffer.from([0xf0]))), 0x81, /AUTH/);
    expect(new PacketParser({ protocolVersion: 5 }).push(Buffer.from([0xf0]))).toEqual([]);
  });

  it('a CONNECT switches the parser to its level: AUTH is rejected after a 3.1.1 CONNECT even if the parser started at 5', () => {
    const parser = new PacketParser({ protocolVersion: 5 });
    const connect = hex`
      10 0D 00 04 4D 51 54 54 04 // CONNECT, 'MQTT' level 4
      02 00 3C 00 01 63          // clean session, keep alive 60, client id 'c'
    `;
    expect(parser.push(connect)).toHaveLength(1);
    expect(parser.protocolVersion).toBe(4);
    expectProtocolError(thrown(() => parser.push(hex`F0 00`)), 0x81, /AUTH/);
  });
});

describe('maximum packet size is enforced from the fixed header', () => {
  it('the 0x95 error is thrown by the push that completes the fixed header, with no body byte pushed', () => {
    for (const header of [hex`30 FE 07`, hex`30 80 80 01`, hex`32 FF FF FF 7F`, hex`82 81 08`]) {
      // In one push.
      const whole = new PacketParser({ protocolVersion: 4, maxPacketSize: 1024 });
      expectProtocolError(thrown(() => whole.push(header)), 0x95);
      // One byte at a time: every byte before the last is accepted, the last one throws.
      const split = new PacketParser({ protocolVersion: 4, maxPacketSize: 1024 });
      for (let i = 0; i < header.length - 1; i++) {
        expect(split.push(header.subarray(i, i + 1))).toEqual([]);
        expect(split.hasPartialPacket).toBe(true);
      }
      expectProtocolError(thrown(() => split.push(header.subarray(header.length - 1))), 0x95);
    }
  });

  it('after complete packets in the same chunk, the oversized header still throws before its body', () => {
    const parser = new PacketParser({ protocolVersion: 4, maxPacketSize: 1024 });
    const chunk = Buffer.concat([hex`C0 00`, hex`D0 00`, hex`30 FE 07`]);
    expectProtocolError(thrown(() => parser.push(chunk)), 0x95, /1025 bytes/);
  });

  it('a packet of exactly maxPacketSize bytes is accepted (boundary control)', () => {
    const parser = new PacketParser({ protocolVersion: 4, maxPacketSize: 1024 });
    expect(parser.push(hex`30 FD 07`)).toEqual([]); // remaining length 1021: 1 + 2 + 1021 = 1024 bytes
    expect(parser.hasPartialPacket).toBe(true);
    const body = Buffer.alloc(1021, 0x78);
    body.writeUInt16BE(1, 0); // topic length 1
    body[2] = 0x61; // topic 'a'
    const packets = parser.push(body);
    expect(packets).toHaveLength(1);
    expect(packets[0]).toMatchObject({ type: 'publish', topic: 'a' });
    expect(parser.hasPartialPacket).toBe(false);
  });
});

describe('a failed parser stays failed', () => {
  it('after an error every further push() rethrows the same error object, whatever is pushed', () => {
    const parser = new PacketParser({ protocolVersion: 5 });
    const first = expectProtocolError(thrown(() => parser.push(hex`40 03 00 01 04`)), 0x82);
    for (const next of [hex`C0 00`, Buffer.alloc(0), hex`36`, hex`30 03 00 01 61`]) {
      expect(thrown(() => parser.push(next))).toBe(first);
    }
  });

  it('packets completed in the failing chunk before the error are not returned, and the error sticks', () => {
    const parser = new PacketParser({ protocolVersion: 4 });
    const first = thrown(() => parser.push(Buffer.concat([hex`C0 00`, hex`C0 01 00`])));
    expectProtocolError(first, 0x81, /PINGREQ/);
    expect(thrown(() => parser.push(hex`C0 00`))).toBe(first);
  });
});

describe('will topic', () => {
  // CONNECT 3.1.1 with the will flag, client id 'c', will topic '' and an empty will payload.
  it.each([4, 5] as const)('[MQTT-4.7.3-1] an empty will topic is rejected with 0x90 (protocol %i)', (version) => {
    const bytes = version === 4
      ? hex`10 11 0004 4D515454 04 06 003C 0001 63 0000 0000`
      : hex`10 13 0004 4D515454 05 06 003C 00 0001 63 00 0000 0000`;
    const parser = new PacketParser({ protocolVersion: version });
    expectProtocolError(thrown(() => parser.push(bytes)), 0x90, /empty will topic/);
  });
});

describe('valid neighbours of the corpus are accepted (controls)', () => {
  it('(5.0) a password without a user name is allowed', () => {
    const parser = new PacketParser({ protocolVersion: 5 });
    const packets = parser.push(hex`
      10                   // CONNECT
      11                   // remaining length 17
      00 04 4D 51 54 54 05 // 'MQTT' level 5
      42                   // connect flags: password, clean start
      00 3C                // keep alive 60
      00                   // property length 0
      00 01 63             // client id 'c'
      00 01 70             // password 'p'
    `);
    expect(packets).toHaveLength(1);
    expect(packets[0]).toMatchObject({ type: 'connect', protocolVersion: 5, clientId: 'c' });
  });

  it('(5.0) an empty topic name with a topic alias is allowed', () => {
    const parser = new PacketParser({ protocolVersion: 5 });
    const packets = parser.push(hex`
      30       // PUBLISH QoS 0
      06       // remaining length 6
      00 00    // topic ''
      03       // property length 3
      23 00 07 // topic alias 7
    `);
    expect(packets).toEqual([expect.objectContaining({ type: 'publish', topic: '', properties: { topicAlias: 7 } })]);
  });

  it('a BOM (EF BB BF), U+FFFF and U+10FFFF are well-formed UTF-8 and pass', () => {
    const parser = new PacketParser({ protocolVersion: 4 });
    const packets = parser.push(hex`
      30                            // PUBLISH QoS 0
      0F                            // remaining length 15
      00 0D                         // topic length 13
      EF BB BF 61                   // U+FEFF 'a'
      EF BF BF                      // U+FFFF
      F4 8F BF BF                   // U+10FFFF
      2F 62                         // '/b'
    `);
    expect(packets).toEqual([expect.objectContaining({ topic: '\uFEFFa\uFFFF\u{10FFFF}/b' })]);
  });

  it('(5.0) subscriptionIdentifier may repeat in PUBLISH but not in SUBSCRIBE', () => {
    const publish = new PacketParser({ protocolVersion: 5 }).push(hex`
      30       // PUBLISH QoS 0
      08       // remaining length 8
      00 01 61 // topic 'a'
      04       // property length 4
      0B 01    // subscription identifier 1
      0B 02    // subscription identifier 2
    `);
    expect(publish).toEqual([expect.objectContaining({ properties: { subscriptionIdentifiers: [1, 2] } })]);
    const subscribe = new PacketParser({ protocolVersion: 5 });
    expectProtocolError(thrown(() => subscribe.push(hex`
      82       // SUBSCRIBE
      0B       // remaining length 11
      00 01    // packet id 1
      04       // property length 4
      0B 01    // subscription identifier 1
      0B 02    // subscription identifier 2
      00 01 61 // filter 'a'
      00       // options
    `)), 0x82, /subscriptionIdentifiers appears more than once/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. Fuzz properties

/** Splits bytes into chunks whose sizes cycle through `sizes`. */
function chunked(bytes: Uint8Array, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  let i = 0;
  while (pos < bytes.length) {
    const n = sizes[i++ % sizes.length]!;
    out.push(Buffer.from(bytes.subarray(pos, pos + n)));
    pos += n;
  }
  return out;
}

const chunkSizesArb = fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })), {
  minLength: 1,
  maxLength: 8,
});

/** Every first byte the parser must accept for `version` (type + correct flags). */
function validFirstBytes(version: ProtocolVersion): number[] {
  const out: number[] = [];
  for (let type = 1; type <= (version === 5 ? 15 : 14); type++) {
    if (type === 3) {
      for (let flags = 0; flags < 16; flags++) {
        const qos = (flags >> 1) & 3;
        if (qos !== 3 && !((flags & 8) !== 0 && qos === 0)) out.push(0x30 | flags);
      }
    } else {
      out.push((type << 4) | (type === 6 || type === 8 || type === 10 ? 2 : 0));
    }
  }
  return out;
}

/** Random bytes: unconstrained, or starting with a valid first byte, or a run of framed packets with random bodies. */
function randomStreamArb(version: ProtocolVersion): fc.Arbitrary<Uint8Array> {
  const first = fc.constantFrom(...validFirstBytes(version));
  const framed = fc
    .array(fc.tuple(first, fc.uint8Array({ maxLength: 60 })), { minLength: 1, maxLength: 5 })
    .map((frames) => Uint8Array.from(frames.flatMap(([b, body]) => [b, body.length, ...body])));
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 200 }),
    fc.tuple(first, fc.uint8Array({ maxLength: 200 })).map(([b, rest]) => Uint8Array.from([b, ...rest])),
    framed,
  );
}

interface FeedResult {
  packets: Packet[];
  error: ProtocolError | null;
  /** Bytes in the chunks pushed without an error. */
  accepted: number;
}

/**
 * Pushes the chunks until one throws. Anything thrown must be a ProtocolError, and not one the parser made by
 * wrapping an unexpected exception (a RangeError or TypeError from inside the decoder would be a codec bug that
 * push() hides behind 0x81 "undecodable packet").
 */
function feed(parser: PacketParser, chunks: readonly Buffer[]): FeedResult {
  const packets: Packet[] = [];
  let accepted = 0;
  for (const chunk of chunks) {
    let out: Packet[];
    try {
      out = parser.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw new Error(`push() threw a non-ProtocolError: ${String(err)}`);
      if (err.message.includes('undecodable packet')) throw new Error(`push() hid an internal exception: ${err.message}`);
      // A failed parser rethrows the same error.
      let again: unknown;
      try {
        parser.push(chunk);
      } catch (e) {
        again = e;
      }
      if (again !== err) throw new Error('a failed parser did not rethrow the same error');
      return { packets, error: err, accepted };
    }
    accepted += chunk.length;
    packets.push(...out);
    // Each packet consumes at least 2 bytes (a first byte and a remaining length byte).
    if (packets.length * 2 > accepted) throw new Error(`${packets.length} packets from ${accepted} bytes`);
  }
  return { packets, error: null, accepted };
}

describe('fuzz: random bytes in random chunkings', () => {
  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: push() returns packets or throws a ProtocolError, nothing else`, () => {
      fc.assert(
        fc.property(randomStreamArb(version), chunkSizesArb, (bytes, sizes) => {
          feed(new PacketParser({ protocolVersion: version }), chunked(bytes, sizes));
        }),
        { numRuns: 5000 },
      );
    });
  }
});

// Valid encodings to mutate: every packet type, with and without 5.0 properties.

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

const v4Packets: Packet[] = [
  {
    type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: true, keepalive: 60, clientId: 'sensor-1',
    will: { topic: 'status/sensor-1', payload: buf('offline'), qos: 1, retain: true }, username: 'user', password: buf('secret'),
  },
  { type: 'connect', protocolVersion: 3, protocolName: 'MQIsdp', clean: false, keepalive: 0, clientId: 'old' },
  { type: 'connack', sessionPresent: true, reasonCode: 0 },
  { type: 'connack', sessionPresent: false, reasonCode: 5 },
  { type: 'publish', topic: 'a/b/c', payload: buf('21.5'), qos: 0, retain: true, dup: false },
  { type: 'publish', topic: 'température/é', payload: Buffer.alloc(40, 7), qos: 1, retain: false, dup: true, packetId: 513 },
  { type: 'publish', topic: 'x', payload: Buffer.alloc(0), qos: 2, retain: false, dup: false, packetId: 65535 },
  { type: 'puback', packetId: 1 },
  { type: 'pubrec', packetId: 2 },
  { type: 'pubrel', packetId: 3 },
  { type: 'pubcomp', packetId: 4 },
  { type: 'subscribe', packetId: 10, subscriptions: [{ topic: 'a/+/c', qos: 1 }, { topic: '#', qos: 2 }, { topic: '$SYS/x', qos: 0 }] },
  { type: 'suback', packetId: 10, reasonCodes: [1, 2, 0, 0x80] },
  { type: 'unsubscribe', packetId: 11, topics: ['a/+/c', 'b'] },
  { type: 'unsuback', packetId: 11 },
  { type: 'pingreq' },
  { type: 'pingresp' },
  { type: 'disconnect' },
];

const v5Packets: Packet[] = [
  {
    type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean: true, keepalive: 30, clientId: 'dev-ü',
    properties: {
      sessionExpiryInterval: 3600, receiveMaximum: 20, maximumPacketSize: 65536, topicAliasMaximum: 10,
      requestResponseInformation: 1, requestProblemInformation: 0, userProperties: [['k', 'v'], ['région', 'eu']],
      authenticationMethod: 'SCRAM', authenticationData: buf('abc'),
    },
    will: {
      topic: 'will/dev', payload: buf('bye'), qos: 2, retain: false,
      properties: {
        willDelayInterval: 5, payloadFormatIndicator: 1, messageExpiryInterval: 60, contentType: 'text/plain',
        responseTopic: 'reply/dev', correlationData: buf('cd'), userProperties: [['a', 'b']],
      },
    },
    username: 'u',
    password: buf('p'),
  },
  { type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean: false, keepalive: 0, clientId: '', password: buf('p') },
  {
    type: 'connack', sessionPresent: false, reasonCode: 0,
    properties: {
      sessionExpiryInterval: 0, receiveMaximum: 100, maximumQos: 1, retainAvailable: 0, maximumPacketSize: 1024,
      assignedClientIdentifier: 'auto-1', topicAliasMaximum: 5, reasonString: 'ok', userProperties: [['x', 'y']],
      wildcardSubscriptionAvailable: 1, subscriptionIdentifiersAvailable: 1, sharedSubscriptionAvailable: 0,
      serverKeepAlive: 120, responseInformation: 'resp', serverReference: 'other', authenticationMethod: 'm', authenticationData: buf('d'),
    },
  },
  { type: 'connack', sessionPresent: false, reasonCode: 0x87 },
  {
    type: 'publish', topic: 'a/b', payload: buf('{"t":1}'), qos: 1, retain: false, dup: false, packetId: 7,
    properties: {
      payloadFormatIndicator: 1, messageExpiryInterval: 10, topicAlias: 3, responseTopic: 'r', correlationData: buf('c'),
      userProperties: [['k', '温度'], ['k', 'v2']], subscriptionIdentifiers: [1, 300, 268435455], contentType: 'application/json',
    },
  },
  { type: 'publish', topic: '', payload: buf('x'), qos: 0, retain: true, dup: false, properties: { topicAlias: 3 } },
  { type: 'publish', topic: 'q', payload: Buffer.alloc(0), qos: 2, retain: false, dup: true, packetId: 9 },
  { type: 'puback', packetId: 7 },
  { type: 'puback', packetId: 7, reasonCode: 0x10, properties: { reasonString: 'no subscribers', userProperties: [['a', 'b']] } },
  { type: 'pubrec', packetId: 8, reasonCode: 0x80 },
  { type: 'pubrel', packetId: 8, reasonCode: 0x92, properties: { reasonString: 'gone' } },
  { type: 'pubcomp', packetId: 8 },
  {
    type: 'subscribe', packetId: 12,
    subscriptions: [
      { topic: 'a/#', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 },
      { topic: '$share/g/b', qos: 0, retainHandling: 1 },
    ],
    properties: { subscriptionIdentifiers: [42], userProperties: [['s', 't']] },
  },
  { type: 'suback', packetId: 12, reasonCodes: [2, 0x87, 0x00], properties: { reasonString: 'partial' } },
  { type: 'unsubscribe', packetId: 13, topics: ['a/#', '$share/g/b'], properties: { userProperties: [['u', 'v']] } },
  { type: 'unsuback', packetId: 13, reasonCodes: [0, 0x11] },
  { type: 'pingreq' },
  { type: 'pingresp' },
  { type: 'disconnect' },
  { type: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0, reasonString: 'bye', serverReference: 's' } },
  { type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM', authenticationData: buf('nonce') } },
  { type: 'auth' },
];

const corpus: Record<4 | 5, Buffer[]> = {
  4: v4Packets.map((p) => encodePacket(p, 4)),
  5: v5Packets.map((p) => encodePacket(p, 5)),
};

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number }
  | { op: 'overwrite'; at: number; byte: number };

const byteArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0x7f, 0x80, 0xff, 0xc0, 0xed, 0x23, 0x2b));
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: byteArb }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('overwrite' as const), at: fc.nat(), byte: byteArb }),
);

function mutate(bytes: Buffer, mutations: readonly Mutation[]): Uint8Array {
  const b = [...bytes];
  for (const m of mutations) {
    if (m.op === 'insert') {
      b.splice(m.at % (b.length + 1), 0, m.byte);
      continue;
    }
    if (b.length === 0) continue;
    const at = m.at % b.length;
    if (m.op === 'flip') b[at]! ^= 1 << m.bit;
    else if (m.op === 'delete') b.splice(at, 1);
    else b[at] = m.byte;
  }
  return Uint8Array.from(b);
}

describe('fuzz: mutated valid packets', () => {
  it('every valid encoding in the mutation corpus parses back to one packet of its type', () => {
    for (const version of [4, 5] as const) {
      const packets = version === 4 ? v4Packets : v5Packets;
      corpus[version].forEach((bytes, i) => {
        const parser = new PacketParser({ protocolVersion: version });
        const out = parser.push(bytes);
        expect(out.map((p) => p.type)).toEqual([packets[i]!.type]);
        expect(parser.hasPartialPacket).toBe(false);
      });
    }
  });

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: flips, inserts, deletes and overwrites never raise anything but ProtocolError; accepted packets re-encode`, () => {
      const encodings = corpus[version];
      fc.assert(
        fc.property(
          fc.array(fc.nat({ max: encodings.length - 1 }), { minLength: 1, maxLength: 3 }),
          fc.array(mutationArb, { minLength: 1, maxLength: 6 }),
          chunkSizesArb,
          (picks, mutations, sizes) => {
            const stream = mutate(Buffer.concat(picks.map((i) => encodings[i]!)), mutations);
            const parser = new PacketParser({ protocolVersion: version });
            const { packets } = feed(parser, chunked(stream, sizes));
            // Whatever the decoder accepted, the encoder must be able to write, and decoding that again must
            // give a packet that encodes to the same bytes (decoder and encoder agree on what is valid).
            let current: ProtocolVersion = version;
            for (const packet of packets) {
              if (packet.type === 'connect') current = packet.protocolVersion;
              const once = encodePacket(packet, current);
              const again = new PacketParser({ protocolVersion: current }).push(once);
              expect(again).toHaveLength(1);
              expect(encodePacket(again[0]!, current).equals(once)).toBe(true);
            }
          },
        ),
        { numRuns: 5000 },
      );
    });
  }
});

// Maximum packet size under a random stream.

/** Minimal Variable Byte Integer encoding, written independently of protocol/writer.ts. */
function varint(value: number): number[] {
  const out: number[] = [];
  let n = value;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/**
 * A well-formed 3.1.1 PUBLISH with `remaining` body bytes (topic 'a', payload filled with `fill`), truncated to its
 * fixed header plus the first `bodyBytes` body bytes.
 */
function publishFrame(remaining: number, fill: number, bodyBytes: number): number[] {
  const n = Math.min(bodyBytes, remaining);
  const body = [0x00, 0x01, 0x61, ...new Array<number>(Math.max(0, n - 3)).fill(fill)].slice(0, n);
  return [0x30, ...varint(remaining), ...body];
}


const MAX = 1024;

/**
 * Independent framing model, fed the same bytes as the parser: walks fixed headers and bodies incrementally
 * (O(1) per pushed chunk and byte of header), so it can be checked after every push of a long stream.
 */
class FrameModel {
  /** Frames whose last byte has been fed. */
  completed = 0;
  /** Set once a frame's fixed header is complete and declares more than MAX bytes in all. */
  oversized = false;
  /** Set when a remaining length runs past 4 bytes. */
  badLength = false;
  private header: number[] = [];
  /** Body bytes still to come for the frame in progress; -1 while reading a fixed header. */
  private need = -1;

  /** True while a frame is started but not finished (what hasPartialPacket must say). */
  get partial(): boolean {
    return this.need > 0 || this.header.length > 0;
  }

  feed(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length && !this.oversized && !this.badLength) {
      if (this.need > 0) {
        const take = Math.min(this.need, chunk.length - pos);
        this.need -= take;
        pos += take;
        if (this.need === 0) {
          this.completed++;
          this.need = -1;
        }
        continue;
      }
      this.header.push(chunk[pos++]!);
      const h = fixedHeader(this.header);
      if (h === null) continue;
      if (h === 'too-long') {
        this.badLength = true;
        return;
      }
      this.header = [];
      if (h.headerLength + h.remaining > MAX) {
        this.oversized = true;
        return;
      }
      if (h.remaining === 0) this.completed++;
      else this.need = h.remaining;
    }
  }
}

interface BoundedRun {
  error: ProtocolError | null;
  packets: number;
  /** Frames the model saw completed before the push that failed (or in all, without an error). */
  completedBeforeFailure: number;
  /** Whether the model saw an oversized header only in the failing push. */
  oversizedInFailingPush: boolean;
}

/**
 * Feeds `stream` to a parser with maxPacketSize MAX and checks, after every push, against the model:
 *  - a push that completes an oversized fixed header throws (the parser never buffers such a body);
 *  - a 0x95 is thrown only when the model has seen an oversized header;
 *  - after a successful push, hasPartialPacket is true exactly when a frame is in progress (whose declared
 *    size is then ≤ MAX, since no oversized header was accepted).
 * Plain throws instead of expect() keep the per-push cost low.
 */
function runBounded(stream: Uint8Array, sizes: readonly number[]): BoundedRun {
  const parser = new PacketParser({ protocolVersion: 4, maxPacketSize: MAX });
  const model = new FrameModel();
  let packets = 0;
  for (const chunk of chunked(stream, sizes)) {
    const completedBefore = model.completed;
    model.feed(chunk);
    let out: Packet[];
    try {
      out = parser.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw new Error(`push() threw a non-ProtocolError: ${String(err)}`);
      if (err.message.includes('undecodable packet')) throw new Error(`push() hid an internal exception: ${err.message}`);
      if (err.reasonCode === 0x95 && !model.oversized) throw new Error(`0x95 without an oversized frame: ${err.message}`);
      return { error: err, packets, completedBeforeFailure: completedBefore, oversizedInFailingPush: model.oversized };
    }
    packets += out.length;
    if (model.oversized) throw new Error('a push completing an oversized fixed header did not throw');
    if (model.badLength) throw new Error('a remaining length longer than 4 bytes was accepted');
    if (parser.hasPartialPacket !== model.partial) {
      throw new Error(`hasPartialPacket is ${parser.hasPartialPacket}, the model says ${model.partial}`);
    }
  }
  return { error: null, packets, completedBeforeFailure: model.completed, oversizedInFailingPush: false };
}

const remainingArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 3, max: 120 }) },
  { weight: 3, arbitrary: fc.integer({ min: MAX - 12, max: MAX + 4 }) }, // around the limit (header is 3 bytes)
  { weight: 1, arbitrary: fc.integer({ min: 3, max: 2000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2000, max: 268_435_455 }) },
);

describe('fuzz: maxPacketSize 1024 bounds what the parser buffers', () => {
  it('random streams: an oversized header never gets past push(), and hasPartialPacket follows the framing', () => {
    const headersWithTails = fc
      .array(fc.tuple(fc.constantFrom(...validFirstBytes(4)), remainingArb, fc.uint8Array({ maxLength: 40 })), {
        minLength: 1,
        maxLength: 4,
      })
      .map((frames) => Uint8Array.from(frames.flatMap(([b, remaining, tail]) => [b, ...varint(remaining), ...tail])));
    fc.assert(
      fc.property(fc.oneof(randomStreamArb(4), headersWithTails), chunkSizesArb, (stream, sizes) => {
        const run = runBounded(stream, sizes);
        if (run.error === null && run.packets !== run.completedBeforeFailure) {
          throw new Error(`${run.packets} packets returned, ${run.completedBeforeFailure} frames complete`);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('well-formed PUBLISH streams: packets up to 1024 bytes pass; the first larger one fails with 0x95 in the push that completes its header', () => {
    const frameArb = fc.record({ remaining: remainingArb, fill: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 4 }), chunkSizesArb, (frames, sizes) => {
        // Frames up to the first oversized one are complete; the oversized one gets its header and a few body bytes.
        const bytes: number[] = [];
        let complete = 0;
        let oversized = false;
        for (const f of frames) {
          if (1 + varint(f.remaining).length + f.remaining > MAX) {
            bytes.push(...publishFrame(f.remaining, f.fill, 16));
            oversized = true;
            break;
          }
          bytes.push(...publishFrame(f.remaining, f.fill, f.remaining));
          complete++;
        }
        const run = runBounded(Uint8Array.from(bytes), sizes);
        if (!oversized) {
          expect(run.error).toBeNull();
          expect(run.packets).toBe(complete);
        } else {
          expectProtocolError(run.error, 0x95);
          expect(run.oversizedInFailingPush).toBe(true);
          // Packets completed by earlier pushes were delivered; those completed by the failing push are not
          // returned (push() throws instead), by design.
          expect(run.packets).toBe(run.completedBeforeFailure);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
