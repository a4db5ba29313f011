/** Broker counters: every limit hit and every drop is counted here, none is silent. */
export interface BrokerMetrics {
  connectionsAccepted: number;
  clientsConnected: number;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  publishReceived: [number, number, number];
  publishSent: [number, number, number];
  /** Drops by reason: queue-full, expired, slow-consumer, packet-too-large, no-subscribers is not a drop. */
  dropped: Record<DropReason, number>;
  protocolErrors: number;
  /** protocolErrors by the MQTT reason code the connection was closed with (0x83 for internal errors). */
  protocolErrorsByReason: Record<number, number>;
  /** Connections closed before becoming clients: refused on accept, or refused by CONNACK. */
  connectionsRejected: Record<RejectReason, number>;
  /** Connections closed because CONNECT did not arrive within connectTimeout. */
  connectTimeouts: number;
  /** Clients disconnected for publishing faster than publishRateLimit. */
  rateLimited: number;
  /** QoS 1/2 deliveries that had to wait in the queue because the client's inflight window was full. */
  inflightWindowFull: number;
  keepaliveTimeouts: number;
  slowConsumerDisconnects: number;
  takeovers: number;
  /** Times a publisher was paused because a subscriber it feeds had a long queue (flow control). */
  publishersPaused: number;
  willsPublished: number;
  sessionsExpired: number;
}

export type DropReason = 'queueFull' | 'expired' | 'slowConsumer' | 'packetTooLarge';
/** maxConnections: over the limit on accept; shuttingDown: arrived while closing; connackRefused: CONNACK with a failure code. */
export type RejectReason = 'maxConnections' | 'shuttingDown' | 'connackRefused';

export function createMetrics(): BrokerMetrics {
  return {
    connectionsAccepted: 0,
    clientsConnected: 0,
    messagesReceived: 0,
    messagesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    publishReceived: [0, 0, 0],
    publishSent: [0, 0, 0],
    dropped: { queueFull: 0, expired: 0, slowConsumer: 0, packetTooLarge: 0 },
    protocolErrors: 0,
    protocolErrorsByReason: {},
    connectionsRejected: { maxConnections: 0, shuttingDown: 0, connackRefused: 0 },
    connectTimeouts: 0,
    rateLimited: 0,
    inflightWindowFull: 0,
    keepaliveTimeouts: 0,
    slowConsumerDisconnects: 0,
    takeovers: 0,
    publishersPaused: 0,
    willsPublished: 0,
    sessionsExpired: 0,
  };
}
