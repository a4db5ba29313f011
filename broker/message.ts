/** An application message as it flows through the broker: routed once, encoded once per wire shape. */
import type { StoredMessage } from './store/types.js';

/**
 * The stored fields (properties are the forwarded ones only: no topic alias, no subscription
 * identifiers, no expiry interval — that became expiresAt) plus routing state.
 */
export interface Message extends StoredMessage {
  /** Store id once the message has been persisted (it is persisted at most once). */
  storeId?: number;
  /**
   * PUBLISH headers already encoded for this message, keyed by wireKey(): a fan-out to many
   * subscribers encodes each distinct (version, qos, retain) header once. The first shape lives in
   * two plain fields (most messages have one), further shapes in a map.
   */
  headerKey?: number;
  header?: Buffer;
  moreHeaders?: Map<number, Buffer>;
}

export function wireKey(version: number, qos: number, retain: boolean): number {
  return (version << 3) | (qos << 1) | (retain ? 1 : 0);
}

export function toStoredMessage(m: Message): StoredMessage {
  const stored: StoredMessage = { topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain };
  if (m.properties !== undefined) stored.properties = m.properties;
  if (m.expiresAt !== undefined) stored.expiresAt = m.expiresAt;
  if (m.publisherId !== undefined) stored.publisherId = m.publisherId;
  return stored;
}

export function fromStoredMessage(s: StoredMessage, storeId: number): Message {
  const m: Message = { topic: s.topic, payload: s.payload, qos: s.qos, retain: s.retain, storeId };
  if (s.properties !== undefined) m.properties = s.properties;
  if (s.expiresAt !== undefined) m.expiresAt = s.expiresAt;
  if (s.publisherId !== undefined) m.publisherId = s.publisherId;
  return m;
}

/** A payload that is a view into a large socket chunk is copied before it is kept for long. */
export function detachPayload(payload: Buffer): Buffer {
  return payload.byteLength * 2 < payload.buffer.byteLength ? Buffer.from(payload) : payload;
}
