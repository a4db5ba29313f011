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
  keepaliveTimeouts: number;
  slowConsumerDisconnects: number;
  takeovers: number;
  willsPublished: number;
  sessionsExpired: number;
}

export type DropReason = 'queueFull' | 'expired' | 'slowConsumer' | 'packetTooLarge';

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
    keepaliveTimeouts: 0,
    slowConsumerDisconnects: 0,
    takeovers: 0,
    willsPublished: 0,
    sessionsExpired: 0,
  };
}
