/** `$SYS/broker/...` topics, published as retained messages every `sysInterval` seconds. */
import type { BrokerCore } from './core.js';

export function publishSysTopics(core: BrokerCore, version: string): void {
  const m = core.metrics;
  const values: Array<[string, string | number]> = [
    ['version', `mqtt-sim ${version}`],
    ['uptime', `${Math.floor((core.now() - core.startedAt) / 1000)} seconds`],
    ['clients/connected', m.clientsConnected],
    ['clients/total', core.sessions.size],
    ['messages/received', m.messagesReceived],
    ['messages/sent', m.messagesSent],
    ['messages/dropped', m.dropped.queueFull + m.dropped.expired + m.dropped.slowConsumer + m.dropped.packetTooLarge],
    ['bytes/received', m.bytesReceived],
    ['bytes/sent', m.bytesSent],
    ['subscriptions/count', core.trie.size],
    ['retained messages/count', core.retained.size],
  ];
  for (const [name, value] of values) {
    core.publish({ topic: `$SYS/broker/${name}`, payload: Buffer.from(String(value)), qos: 0, retain: true });
  }
}
