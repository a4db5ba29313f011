/**
 * Acknowledgements from clients: PUBACK and PUBCOMP complete our deliveries, PUBREC moves a QoS 2
 * delivery to its second half, PUBREL releases a QoS 2 message the client sent us.
 */
import type { PubackPacket, PubcompPacket, PubrecPacket, PubrelPacket } from '../../protocol/packets.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handlePuback(core: BrokerCore, conn: Connection, packet: PubackPacket): void {
  const session = conn.session!;
  const entry = session.inflight.get(packet.packetId);
  // An unknown id (already completed, or never sent) is ignored.
  if (entry === undefined || entry.qos !== 1) return;
  core.complete(session, entry);
  core.pump(session);
}

export function handlePubrec(core: BrokerCore, conn: Connection, packet: PubrecPacket): void {
  const session = conn.session!;
  const entry = session.inflight.get(packet.packetId);
  if (entry === undefined || entry.qos !== 2) {
    // [MQTT-4.3.3-?] PUBREL for an id we do not know carries 0x92 in MQTT 5.
    conn.send(conn.version === 5 ? { type: 'pubrel', packetId: packet.packetId, reasonCode: 0x92 } : { type: 'pubrel', packetId: packet.packetId });
    return;
  }
  if (packet.reasonCode !== undefined && packet.reasonCode >= 0x80) {
    // A PUBREC with an error ends the flow: no PUBREL follows [MQTT-4.3.3-?].
    core.complete(session, entry);
    core.pump(session);
    return;
  }
  if (entry.state !== 'pubrec-received') {
    entry.state = 'pubrec-received';
    if (entry.persisted) core.store.updateQueueEntry(session.clientId, entry.seq, { state: 'pubrec-received', packetId: entry.packetId });
  }
  // [MQTT-4.3.3-4] answer PUBREC with PUBREL.
  conn.send({ type: 'pubrel', packetId: packet.packetId });
}

export function handlePubcomp(core: BrokerCore, conn: Connection, packet: PubcompPacket): void {
  const session = conn.session!;
  const entry = session.inflight.get(packet.packetId);
  if (entry === undefined || entry.qos !== 2) return;
  core.complete(session, entry);
  core.pump(session);
}

export function handlePubrel(core: BrokerCore, conn: Connection, packet: PubrelPacket): void {
  const session = conn.session!;
  const known = session.inboundQos2.delete(packet.packetId);
  if (known && session.persistent) core.store.removeInboundQos2(session.clientId, packet.packetId);
  // [MQTT-4.3.3-11] PUBCOMP answers PUBREL; 0x92 when the id is unknown (MQTT 5).
  if (!known && conn.version === 5) conn.send({ type: 'pubcomp', packetId: packet.packetId, reasonCode: 0x92 });
  else conn.send({ type: 'pubcomp', packetId: packet.packetId });
}
