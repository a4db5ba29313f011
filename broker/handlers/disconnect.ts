/**
 * DISCONNECT from the client: reason 0x00 discards the will [MQTT-3.1.2-10]; any other reason keeps it.
 * MQTT 5 may change the session expiry, but not from 0 to non-zero [MQTT-3.14.2-?].
 */
import { ProtocolError } from '../../protocol/errors.js';
import type { DisconnectPacket } from '../../protocol/packets.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handleDisconnect(core: BrokerCore, conn: Connection, packet: DisconnectPacket): void {
  const session = conn.session!;
  const expiry = packet.properties?.sessionExpiryInterval;
  if (expiry !== undefined) {
    if (conn.connectSessionExpiry === 0 && expiry !== 0) {
      throw new ProtocolError(0x82, 'session expiry cannot be set on DISCONNECT when CONNECT had none');
    }
    session.expiryInterval = Math.min(expiry, core.options.maxSessionExpiry);
  }
  // Only reason 0x00 deletes the will [MQTT-3.14.4-3]; 0x04 and the error reasons (0x80 and up) leave it
  // to be published, as for any other close [MQTT-3.1.2-8].
  conn.normalDisconnect = (packet.reasonCode ?? 0) === 0x00;
  conn.closeReason ??= { reason: 'DISCONNECT from the client', reasonCode: packet.reasonCode ?? 0 };
  conn.end();
}
