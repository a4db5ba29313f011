/**
 * Inbound PUBLISH: resolve the topic alias, check the receive maximum, route the message,
 * then acknowledge — PUBACK for QoS 1, PUBREC for QoS 2 (delivery on PUBLISH, "method B" of 4.3.3).
 */
import { ProtocolError } from '../../protocol/errors.js';
import type { PublishPacket } from '../../protocol/packets.js';
import type { Connection } from '../connection.js';
import { forwardableProperties, type BrokerCore } from '../core.js';
import { admitPublish } from '../limits.js';
import { detachPayload, type Message } from '../message.js';

export function handlePublish(core: BrokerCore, conn: Connection, packet: PublishPacket): void {
  // Over publishRateLimit: neither routed nor acknowledged; the client is disconnected (limits.ts).
  if (!admitPublish(core, conn)) return;
  const session = conn.session!;
  core.metrics.messagesReceived++;
  core.metrics.publishReceived[packet.qos]++;
  const topic = resolveTopic(core, conn, packet);

  if (packet.qos === 2) {
    const id = packet.packetId!;
    if (session.inboundQos2.has(id)) {
      // A resent QoS 2 PUBLISH whose PUBREC was lost: acknowledge again, do not deliver twice [MQTT-4.3.3-?].
      conn.send({ type: 'pubrec', packetId: id });
      return;
    }
    if (conn.version === 5 && session.inboundQos2.size >= core.options.receiveMaximum) {
      // [MQTT-3.3.4-8] more unacknowledged QoS 2 publishes than our Receive Maximum.
      throw new ProtocolError(0x93, `more than ${core.options.receiveMaximum} QoS 2 messages awaiting PUBREL`);
    }
  }
  // Checked on the resolved topic, so a topic alias cannot reach a topic its name could not (docs/security.md).
  if (core.acl !== undefined && !core.acl.allowPublish(conn, topic)) {
    refusePublish(core, conn, packet);
    return;
  }

  const message: Message = {
    topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, publisherId: session.clientId,
  };
  if (packet.properties !== undefined) {
    const { properties, expiresAt } = forwardableProperties(packet.properties, core.now());
    if (properties !== undefined) message.properties = properties;
    if (expiresAt !== undefined) message.expiresAt = expiresAt;
  }
  if (message.retain) message.payload = detachPayload(message.payload);
  core.publishingConnection = conn;
  let deliveries: number;
  try {
    deliveries = core.publish(message);
  } finally {
    core.publishingConnection = undefined;
  }

  if (packet.qos === 1) {
    const reasonCode = conn.version === 5 && deliveries === 0 ? 0x10 : 0;
    conn.send(reasonCode === 0 ? { type: 'puback', packetId: packet.packetId! } : { type: 'puback', packetId: packet.packetId!, reasonCode });
  } else if (packet.qos === 2) {
    const id = packet.packetId!;
    session.inboundQos2.add(id);
    if (session.persistent) core.store.addInboundQos2(session.clientId, id);
    const reasonCode = conn.version === 5 && deliveries === 0 ? 0x10 : 0;
    conn.send(reasonCode === 0 ? { type: 'pubrec', packetId: id } : { type: 'pubrec', packetId: id, reasonCode });
  }
}

/**
 * A PUBLISH the ACL refuses goes nowhere, retained or not. MQTT 5 says so in the acknowledgement (0x87;
 * for QoS 2 an error PUBREC ends the flow); 3.1.1 cannot, so the flow completes as normal [MQTT-3.3.5-2].
 * QoS 0 is dropped silently in both.
 */
function refusePublish(core: BrokerCore, conn: Connection, packet: PublishPacket): void {
  if (packet.qos === 0) return;
  const id = packet.packetId!;
  if (conn.version === 5) {
    conn.send(packet.qos === 1 ? { type: 'puback', packetId: id, reasonCode: 0x87 } : { type: 'pubrec', packetId: id, reasonCode: 0x87 });
    return;
  }
  if (packet.qos === 1) {
    conn.send({ type: 'puback', packetId: id });
    return;
  }
  const session = conn.session!;
  session.inboundQos2.add(id);
  if (session.persistent) core.store.addInboundQos2(session.clientId, id);
  conn.send({ type: 'pubrec', packetId: id });
}

/** Topic aliases (MQTT 5, 3.3.2.3.4): set on first use, then an empty topic name refers to it. */
function resolveTopic(core: BrokerCore, conn: Connection, packet: PublishPacket): string {
  const alias = packet.properties?.topicAlias;
  if (alias === undefined) return packet.topic;
  if (conn.version !== 5 || alias > core.options.topicAliasMaximum) {
    // [MQTT-3.3.2-9] an alias above our Topic Alias Maximum.
    throw new ProtocolError(0x94, `topic alias ${alias} exceeds the maximum of ${core.options.topicAliasMaximum}`);
  }
  if (packet.topic.length > 0) {
    (conn.inboundAliases ??= new Map()).set(alias, packet.topic);
    return packet.topic;
  }
  const topic = conn.inboundAliases?.get(alias);
  // [MQTT-3.3.2-?] an alias used before it was set is a protocol error.
  if (topic === undefined) throw new ProtocolError(0x82, `topic alias ${alias} was never set on this connection`);
  return topic;
}
