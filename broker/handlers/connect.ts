/**
 * CONNECT handling as named steps, in the order the specification describes them (3.1.4):
 * validate the client id → authenticate → take over an existing connection → start or resume the
 * session → remember the will → CONNACK → keepalive → resend what the session still owes.
 */
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../../protocol/errors.js';
import type { ConnectPacket, Properties } from '../../protocol/packets.js';
import type { Connection } from '../connection.js';
import { connectRefused } from '../limits.js';
import type { BrokerCore } from '../core.js';
import type { AuthResult } from '../options.js';
import { Session } from '../session.js';

const NEVER = 0xffffffff;

export function handleConnect(core: BrokerCore, conn: Connection, packet: ConnectPacket): void {
  conn.version = packet.protocolVersion;
  conn.clientId = packet.clientId;
  if (!checkClientId(core, conn, packet)) return;
  adoptCertificateIdentity(core, conn, packet);
  readClientLimits(conn, packet);
  if (packet.properties?.authenticationMethod !== undefined) {
    // Enhanced authentication (AUTH exchanges) is not offered by this broker.
    refuse(conn, 0x8c, 0, 'authentication method not supported');
    return;
  }
  const auth = core.options.authenticate;
  if (auth === undefined) {
    conn.transition('connected');
    establish(core, conn, packet);
    return;
  }
  conn.transition('authenticating');
  conn.backlog = [];
  let result: AuthResult | Promise<AuthResult>;
  try {
    result = auth({
      clientId: conn.clientId,
      protocolVersion: packet.protocolVersion,
      ...(packet.username !== undefined ? { username: packet.username } : {}),
      ...(packet.password !== undefined ? { password: packet.password } : {}),
      ...(conn.remoteAddress !== undefined ? { remoteAddress: conn.remoteAddress } : {}),
      ...(conn.certificateCommonName !== undefined ? { certificateCommonName: conn.certificateCommonName } : {}),
    });
  } catch {
    result = { reasonCode: 0x80 };
  }
  if (result instanceof Promise) {
    result.then(
      (r) => finishAuthentication(core, conn, packet, r),
      () => finishAuthentication(core, conn, packet, { reasonCode: 0x80 }),
    );
  } else {
    finishAuthentication(core, conn, packet, result);
  }
}

/**
 * useCommonNameAsUsername: the CN of a verified client certificate is who the client is, whatever
 * user name CONNECT carried; authentication, ACLs and everything after see the CN.
 */
function adoptCertificateIdentity(core: BrokerCore, conn: Connection, packet: ConnectPacket): void {
  if (core.options.useCommonNameAsUsername && conn.certificateCommonName !== undefined) packet.username = conn.certificateCommonName;
}

function finishAuthentication(core: BrokerCore, conn: Connection, packet: ConnectPacket, result: AuthResult): void {
  if (conn.state !== 'authenticating') return;
  if (result !== true) {
    const code = result === false ? 0x86 : result.reasonCode;
    refuse(conn, code, v3ReturnCode(code));
    return;
  }
  conn.transition('connected');
  const backlog = conn.backlog ?? [];
  conn.backlog = undefined;
  // After an asynchronous authenticator this runs outside Connection.onData, so errors are handled
  // here as onData would: a pipelined second CONNECT is a protocol error that closes the
  // connection [MQTT-3.1.0-2], not an unhandled rejection that leaves it open.
  try {
    establish(core, conn, packet);
    for (const queued of backlog) {
      if (conn.isEnding()) return;
      core.dispatch(conn, queued);
    }
  } catch (err) {
    if (err instanceof ProtocolError) core.onProtocolError(conn, err);
    else core.onInternalError(conn, err);
  }
}

/** MQTT 3.1.1 CONNACK return code for an MQTT 5 refusal reason. */
function v3ReturnCode(reasonCode: number): number {
  switch (reasonCode) {
    case 0x84: return 1;
    case 0x85: return 2;
    case 0x88: case 0x89: return 3;
    case 0x86: return 4;
    default: return 5;
  }
}

/** Refuses the connection with a CONNACK and closes it [MQTT-3.2.2-7] / [MQTT-3.2.2-5]. */
function refuse(conn: Connection, reasonCode: number, v3Code: number, reasonString?: string): void {
  connectRefused(conn, reasonCode, reasonString);
  if (conn.version === 5) {
    conn.send({
      type: 'connack', sessionPresent: false, reasonCode,
      ...(reasonString !== undefined && conn.requestProblemInformation ? { properties: { reasonString } } : {}),
    });
  } else {
    conn.send({ type: 'connack', sessionPresent: false, reasonCode: v3Code || v3ReturnCode(reasonCode) });
  }
  conn.end();
}

function checkClientId(core: BrokerCore, conn: Connection, packet: ConnectPacket): boolean {
  const id = packet.clientId;
  if (packet.protocolVersion === 3 && (id.length === 0 || id.length > 23)) {
    // MQTT 3.1: the client identifier is 1 to 23 characters.
    refuse(conn, 0x85, 2);
    return false;
  }
  if (id.length === 0) {
    if (packet.protocolVersion === 4 && !packet.clean) {
      // [MQTT-3.1.3-8] an empty client id with CleanSession 0 is rejected with return code 0x02.
      refuse(conn, 0x85, 2);
      return false;
    }
    // [MQTT-3.1.3-6] the server assigns a unique client id (v5 returns it in the CONNACK).
    conn.clientId = `mqtt-sim-${randomBytes(9).toString('base64url')}`;
    while (core.sessions.has(conn.clientId)) conn.clientId = `mqtt-sim-${randomBytes(9).toString('base64url')}`;
  }
  return true;
}

function readClientLimits(conn: Connection, packet: ConnectPacket): void {
  const p = packet.properties;
  if (packet.protocolVersion !== 5 || p === undefined) return;
  if (p.receiveMaximum !== undefined) conn.clientReceiveMaximum = p.receiveMaximum;
  if (p.maximumPacketSize !== undefined) conn.clientMaxPacketSize = p.maximumPacketSize;
  if (p.topicAliasMaximum !== undefined) conn.clientTopicAliasMaximum = p.topicAliasMaximum;
  if (p.requestProblemInformation === 0) conn.requestProblemInformation = false;
}

function establish(core: BrokerCore, conn: Connection, packet: ConnectPacket): void {
  const clientId = conn.clientId;
  const o = core.options;
  core.metrics.connectionsAccepted++;

  // Session expiry: v5 from the property (default 0); 3.1.1 CleanSession 0 keeps the session forever.
  let expiry = packet.protocolVersion === 5 ? (packet.properties?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER;
  let expiryCapped = false;
  if (expiry > o.maxSessionExpiry) {
    expiry = o.maxSessionExpiry;
    expiryCapped = true;
  }
  conn.connectSessionExpiry = expiry;

  takeOver(core, clientId);

  let session = core.sessions.get(clientId);
  let sessionPresent = false;
  if (session !== undefined && packet.clean) {
    // Clean start discards the previous session; a will it still held is published now (the session ended).
    core.endSession(session);
    session = undefined;
  }
  if (session === undefined) {
    session = new Session(clientId, packet.protocolVersion);
    core.sessions.set(clientId, session);
  } else {
    // [MQTT-3.2.2-2] / [MQTT-3.2.2-3] session present when a stored session is resumed.
    sessionPresent = true;
    session.protocolVersion = packet.protocolVersion;
  }
  const wasPersistent = session.persistent;
  session.expiryInterval = expiry;
  if (!session.persistent && wasPersistent) {
    core.store.deleteSession(clientId);
    // The store no longer holds this session's queue (nor the message references it took): its entries
    // are memory-only from now on. Left marked persisted, a shared-subscription hand-over would re-enqueue
    // their messages under store ids that are gone (enqueue throws: unknown message id).
    for (const entry of session.inflight.values()) entry.persisted = false;
    for (let i = session.pendingHead; i < session.pending.length; i++) session.pending[i]!.persisted = false;
  }

  // From here the ACL knows this connection as its user name and client id (docs/security.md).
  core.acl?.bind(conn, session, { username: packet.username, clientId });
  storeWill(core, conn, packet);

  core.attach(conn, session);
  if (session.persistent) core.saveSession(session);

  const properties: Properties = {};
  if (packet.protocolVersion === 5) {
    if (packet.clientId.length === 0) properties.assignedClientIdentifier = clientId;
    if (o.receiveMaximum < 65535) properties.receiveMaximum = o.receiveMaximum;
    if (o.topicAliasMaximum > 0) properties.topicAliasMaximum = o.topicAliasMaximum;
    if (o.maxPacketSize < 268_435_460) properties.maximumPacketSize = o.maxPacketSize;
    if (expiryCapped) properties.sessionExpiryInterval = expiry;
  }
  let keepalive = packet.keepalive;
  // Only MQTT 5 can tell a client the server's keep alive; 3.x clients keep the one they asked for,
  // since enforcing an interval they were never told would drop healthy idle clients.
  if (packet.protocolVersion === 5 && o.maxKeepalive > 0 && (keepalive === 0 || keepalive > o.maxKeepalive)) {
    keepalive = o.maxKeepalive;
    // [MQTT-3.2.2-21] the client must use the Server Keep Alive instead of its own.
    properties.serverKeepAlive = keepalive;
  }
  const connack = { type: 'connack' as const, sessionPresent, reasonCode: 0 };
  if (Object.keys(properties).length > 0) conn.send({ ...connack, properties });
  else conn.send(connack);
  conn.startKeepalive(keepalive);

  core.resume(conn, session);
}

/** [MQTT-3.1.4-3] a second connection with the same client id closes the first (v5 reason 0x8E). */
function takeOver(core: BrokerCore, clientId: string): void {
  const existing = core.sessions.get(clientId)?.connection;
  if (existing === null || existing === undefined) return;
  core.metrics.takeovers++;
  core.disconnect(existing, 0x8e, 'session taken over by a new connection');
  core.detach(existing);
}

function storeWill(core: BrokerCore, conn: Connection, packet: ConnectPacket): void {
  const will = packet.will;
  if (will === undefined) return;
  // A will on a topic the client may not write is discarded now, while its identity is certain; the
  // connection is accepted (docs/security.md).
  if (core.acl !== undefined && !core.acl.allowWill(conn, will.topic)) return;
  // Kept as received; publishWill() turns the expiry interval into a deadline when the will is sent.
  const { willDelayInterval, ...properties } = will.properties ?? {};
  conn.will = {
    topic: will.topic,
    payload: Buffer.from(will.payload),
    qos: will.qos,
    retain: will.retain,
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
  };
  conn.willDelay = willDelayInterval ?? 0;
}
