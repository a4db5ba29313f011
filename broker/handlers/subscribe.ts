/**
 * SUBSCRIBE: validate each filter, add or replace the subscription, SUBACK with the granted QoS,
 * then send the retained messages the retain-handling option asks for.
 */
import { ProtocolError } from '../../protocol/errors.js';
import type { SubscribePacket } from '../../protocol/packets.js';
import { parseSharedFilter, topicFilterProblem } from '../../protocol/topic.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';
import type { SubscriptionRecord } from '../store/types.js';

export function handleSubscribe(core: BrokerCore, conn: Connection, packet: SubscribePacket): void {
  const session = conn.session!;
  const v5 = conn.version === 5;
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  const reasonCodes: number[] = [];
  const retainedToSend: Array<{ rec: SubscriptionRecord }> = [];

  for (const s of packet.subscriptions) {
    if (topicFilterProblem(s.topic) !== null) {
      // [MQTT-3.8.4-?] an invalid filter is refused in its SUBACK slot (0x8F in v5, 0x80 in 3.1.1).
      reasonCodes.push(v5 ? 0x8f : 0x80);
      continue;
    }
    const shared = parseSharedFilter(s.topic);
    if (shared !== null && s.noLocal) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
      throw new ProtocolError(0x82, `no-local is not allowed on the shared subscription '${s.topic}'`);
    }
    if (core.acl !== undefined && !core.acl.allowSubscribe(conn, s.topic)) {
      // Not authorized: some topic the filter (for $share, its inner filter) can match is not readable
      // (0x87 in v5, 0x80 in 3.1.1); an existing subscription with the same filter stays as it was.
      reasonCodes.push(v5 ? 0x87 : 0x80);
      continue;
    }
    const rec: SubscriptionRecord = {
      clientId: session.clientId,
      filter: s.topic,
      qos: s.qos,
      noLocal: s.noLocal ?? false,
      retainAsPublished: s.retainAsPublished ?? false,
      retainHandling: s.retainHandling ?? 0,
      ...(subscriptionId !== undefined ? { subscriptionId } : {}),
    };
    const existed = session.subscriptions.has(s.topic);
    // [MQTT-3.8.4-3] a subscription with the same filter replaces the existing one.
    session.subscriptionMap().set(s.topic, rec);
    core.addToTrie(session, rec);
    if (session.persistent) core.store.saveSubscription(rec);
    reasonCodes.push(s.qos);
    // Retained messages are not sent for shared subscriptions [MQTT-3.8.4-?]; retain handling 1 only for new ones.
    if (shared === null && (rec.retainHandling === 0 || (rec.retainHandling === 1 && !existed))) retainedToSend.push({ rec });
  }

  conn.send({ type: 'suback', packetId: packet.packetId, reasonCodes });

  for (const { rec } of retainedToSend) {
    for (const message of core.matchRetained(rec.filter)) {
      const qos = message.qos < rec.qos ? message.qos : rec.qos;
      // [MQTT-3.3.1-8] retained messages sent for a new subscription carry RETAIN 1.
      core.deliver(session, message, qos, true, rec.subscriptionId !== undefined ? [rec.subscriptionId] : undefined, undefined);
    }
  }
}
