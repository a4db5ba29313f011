/** AUTH: this broker offers no enhanced authentication method, so an AUTH packet is a protocol error. */
import { ProtocolError } from '../../protocol/errors.js';
import type { AuthPacket } from '../../protocol/packets.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handleAuth(_core: BrokerCore, _conn: Connection, packet: AuthPacket): void {
  // [MQTT-4.12.0-7] AUTH without an authentication method in CONNECT is a protocol error.
  throw new ProtocolError(0x82, `unexpected AUTH (reason 0x${(packet.reasonCode ?? 0).toString(16)}): no authentication method was negotiated`);
}
