/**
 * Overload protection: the limits checked when a connection arrives, while it has not sent CONNECT,
 * and on every PUBLISH. Each hit is counted in BrokerMetrics and logged (rate-limited) as a `limit`
 * event; none is silent.
 *
 * - maxConnections: checked on accept, before any byte is read. Over the limit the socket is closed
 *   at once (no CONNACK: the broker has not read a CONNECT to answer, and parsing one would cost what
 *   the limit exists to save). Counted in connectionsRejected.maxConnections.
 * - connectTimeout: a connection that has not completed CONNECT in time is closed (a slowloris
 *   defence). Counted in connectTimeouts.
 * - publishRateLimit: a token bucket per connection (rate messages/s, burst one second's worth). A
 *   PUBLISH over the rate is neither routed nor acknowledged, and the client is disconnected: MQTT 5
 *   DISCONNECT 0x96 (Message rate too high), 3.1.1 by closing the connection. We disconnect rather
 *   than pause reading because a paused socket also stops the client's PUBACKs and PINGREQs, which
 *   stalls its deliveries and looks like a dead client, while 0x96 is the remedy MQTT 5 defines; an
 *   unacknowledged QoS 1/2 message is resent by the client after it reconnects, so nothing acknowledged
 *   is lost. Counted in rateLimited.
 */
import type { Duplex } from 'node:stream';
import type { Connection } from './connection.js';
import type { BrokerCore } from './core.js';
import { connectionFields, hex, protocolName } from './log.js';
import type { RejectReason } from './metrics.js';
import { TokenBucket } from './token-bucket.js';

/**
 * Decides whether a new stream may become a connection; refused streams are destroyed and counted.
 * `closing` is true while the broker shuts down.
 */
export function admitConnection(core: BrokerCore, stream: Duplex, remoteAddress: string | undefined, closing: boolean): boolean {
  let reason: RejectReason | undefined;
  if (closing) reason = 'shuttingDown';
  else if (core.options.maxConnections > 0 && core.connections.size >= core.options.maxConnections) reason = 'maxConnections';
  if (reason === undefined) return true;
  core.metrics.connectionsRejected[reason]++;
  stream.destroy();
  if (reason === 'maxConnections') {
    core.limitLog.hit(
      'maxConnections',
      { ...(remoteAddress !== undefined ? { address: remoteAddress } : {}), maxConnections: core.options.maxConnections },
      'connection refused: maxConnections reached',
    );
  }
  return false;
}

/** The connect timer fired before CONNECT completed: close and count it. */
export function connectTimedOut(core: BrokerCore, conn: Connection): void {
  core.metrics.connectTimeouts++;
  conn.closeReason ??= { reason: 'connect timeout: no CONNECT in time' };
  core.limitLog.hit('connectTimeout', { ...connectionFields(conn), connectTimeout: core.options.connectTimeout }, 'connection closed: no CONNECT within connectTimeout');
  conn.destroy();
}

/** Takes a token for one inbound PUBLISH; false (after disconnecting the client) when over the rate. */
export function admitPublish(core: BrokerCore, conn: Connection): boolean {
  const rate = core.options.publishRateLimit;
  if (rate <= 0) return true;
  const now = core.now();
  const bucket = (conn.publishBucket ??= new TokenBucket(rate, Math.max(1, rate), now));
  if (bucket.take(now)) return true;
  core.metrics.rateLimited++;
  core.limitLog.hit('publishRateLimit', { ...connectionFields(conn), publishRateLimit: rate }, 'client disconnected: publish rate over publishRateLimit');
  core.disconnect(conn, 0x96, `message rate too high: more than ${rate} PUBLISH per second`);
  return false;
}

/** A CONNECT refused with a failing CONNACK (client id, authentication, ...): counted and logged. */
export function connectRefused(conn: Connection, reasonCode: number, reasonString: string | undefined): void {
  const core = conn.core;
  core.metrics.connectionsRejected.connackRefused++;
  const reason = `CONNECT refused${reasonString !== undefined ? `: ${reasonString}` : ''}`;
  conn.closeReason ??= { reason, reasonCode };
  // CONNECT was read (the version is known) but the connection never left awaiting-connect.
  core.log.warn({ event: 'connect.refused', ...connectionFields(conn), protocol: protocolName(conn.version), reasonCode: hex(reasonCode), ...(reasonString !== undefined ? { error: reasonString } : {}) }, 'connection refused by CONNACK');
}
