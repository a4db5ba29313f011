/** UNSUBSCRIBE: remove each filter; MQTT 5 reports per filter whether a subscription existed. */
import type { UnsubscribePacket } from '../../protocol/packets.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handleUnsubscribe(core: BrokerCore, conn: Connection, packet: UnsubscribePacket): void {
  const session = conn.session!;
  const reasonCodes: number[] = [];
  for (const filter of packet.topics) {
    const existed = session.subscriptions.delete(filter);
    if (existed) {
      core.removeFromTrie(session.clientId, filter);
      if (session.persistent) core.store.deleteSubscription(session.clientId, filter);
    }
    reasonCodes.push(existed ? 0x00 : 0x11);
  }
  // [MQTT-3.10.4-4] UNSUBACK even when nothing was subscribed.
  if (conn.version === 5) conn.send({ type: 'unsuback', packetId: packet.packetId, reasonCodes });
  else conn.send({ type: 'unsuback', packetId: packet.packetId });
}
