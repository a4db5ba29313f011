/**
 * A deliberately faulty "broker": a TCP proxy in front of a real broker that parses both directions
 * with our PacketParser, re-encodes what it passes on, and lets a pluggable policy misbehave on
 * PUBLISH packets going to the client — swallow one (acknowledging it to the broker itself, so the
 * broker believes it delivered), deliver a QoS 2 message twice, swap two messages, forget retained
 * replays. Each policy acts on
 * exactly the number of messages it is told, so a test can expect the checker to report exactly that.
 *
 * The proxy keeps the protocol consistent on both sides: a swallowed QoS 1 message is PUBACKed to the
 * broker; a swallowed QoS 2 one is PUBRECed and its PUBREL answered with PUBCOMP without reaching the
 * client; an injected copy goes to the client under a packet id of the proxy's own range (from 60000),
 * and the client's acknowledgements of it are answered and kept from the broker.
 */
import net from 'node:net';
import { encodePacket } from '../../protocol/encoder.js';
import type { Packet, ProtocolVersion, PublishPacket } from '../../protocol/packets.js';
import { PacketParser } from '../../protocol/parser.js';
import { readStamp } from '../../simulator/verify/stamp.js';

/** What a policy can do on one proxied connection. */
export interface ProxyLink {
  /** Client id from the CONNECT ('' before it). */
  readonly clientId: string;
  /** Acknowledge a PUBLISH to the broker as if the client had received it, and never show it to the client. */
  swallow(p: PublishPacket): void;
  /** Send a copy of a PUBLISH to the client under a fresh packet id of the proxy's own. */
  inject(p: PublishPacket): void;
}

/** Decides what happens to each PUBLISH from the broker: the packets to pass to the client, in order. */
export interface ProxyPolicy {
  onPublish(p: PublishPacket, link: ProxyLink): PublishPacket[];
  /** How many messages the policy has acted on so far. */
  readonly applied: number;
}

/** A simulator message delivered live (stamped, not a retained replay). */
function isLiveStamped(p: PublishPacket): boolean {
  return !p.retain && readStamp(p.payload) !== null;
}

/** Swallows the first `count` live stamped PUBLISHes (optionally only those `match` accepts), acknowledging them to the broker. */
export function dropPublishes(count: number, match: (p: PublishPacket) => boolean = () => true): ProxyPolicy {
  let applied = 0;
  return {
    get applied() {
      return applied;
    },
    onPublish(p, link) {
      if (applied < count && isLiveStamped(p) && match(p)) {
        applied++;
        link.swallow(p);
        return [];
      }
      return [p];
    },
  };
}

/** Delivers the first `count` live stamped QoS 2 messages twice (the second copy under a new packet id). */
export function duplicateQos2(count: number): ProxyPolicy {
  let applied = 0;
  return {
    get applied() {
      return applied;
    },
    onPublish(p, link) {
      if (applied < count && p.qos === 2 && isLiveStamped(p)) {
        applied++;
        link.inject(p);
      }
      return [p];
    },
  };
}

/**
 * Swaps `count` pairs of consecutive live stamped messages of the same topic: holds one back and passes it
 * on right after the next one on its topic.
 */
export function swapPublishes(count: number, match: (p: PublishPacket) => boolean = () => true): ProxyPolicy {
  let applied = 0;
  let held: PublishPacket | null = null;
  return {
    get applied() {
      return applied;
    },
    onPublish(p) {
      if (!isLiveStamped(p) || !match(p)) return [p];
      if (held !== null && held.topic === p.topic) {
        const first = held;
        held = null;
        applied++;
        return [p, first];
      }
      if (held === null && applied < count) {
        held = p;
        return [];
      }
      return [p];
    },
  };
}

/**
 * A broker that forgot its retained messages for some topics (as one with a volatile retained store does
 * after a restart): swallows every stamped retained replay (RETAIN 1) whose topic `forgotten` accepts,
 * acknowledging it to the broker. Live deliveries (RETAIN 0) pass. `applied` counts swallowed replays.
 */
export function forgetRetained(forgotten: (topic: string) => boolean): ProxyPolicy {
  let applied = 0;
  return {
    get applied() {
      return applied;
    },
    onPublish(p, link) {
      if (p.retain && readStamp(p.payload) !== null && forgotten(p.topic)) {
        applied++;
        link.swallow(p);
        return [];
      }
      return [p];
    },
  };
}

export interface FaultyProxy {
  url: string;
  port: number;
  policy: ProxyPolicy;
  close(): Promise<void>;
}

const INJECTED_FIRST_ID = 60_000;

/** Starts the proxy on 127.0.0.1:0 in front of `target` (host:port of a real broker). */
export async function startFaultyProxy(target: { host: string; port: number }, policy: ProxyPolicy): Promise<FaultyProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const broker = net.connect(target);
    sockets.add(client);
    sockets.add(broker);
    let version: ProtocolVersion = 4;
    let clientId = '';
    const fromClient = new PacketParser();
    const fromBroker = new PacketParser();
    /** QoS 2 ids we PUBRECed for the client: the broker's PUBREL gets our PUBCOMP. */
    const swallowedQos2 = new Set<number>();
    /** Ids of copies we injected: the client's PUBACK / PUBREC / PUBCOMP stay with us. */
    const injected = new Set<number>();
    let nextInjected = INJECTED_FIRST_ID;
    const send = (socket: net.Socket, p: Packet): void => {
      if (!socket.destroyed) socket.write(encodePacket(p, version));
    };
    const link: ProxyLink = {
      get clientId() {
        return clientId;
      },
      swallow(p) {
        if (p.qos === 1) send(broker, { type: 'puback', packetId: p.packetId! });
        else if (p.qos === 2) {
          swallowedQos2.add(p.packetId!);
          send(broker, { type: 'pubrec', packetId: p.packetId! });
        }
      },
      inject(p) {
        const copy: PublishPacket = { ...p, dup: false };
        if (p.qos > 0) {
          copy.packetId = nextInjected++;
          if (nextInjected > 65_535) nextInjected = INJECTED_FIRST_ID;
          injected.add(copy.packetId);
        }
        send(client, copy);
      },
    };
    const close = (): void => {
      client.destroy();
      broker.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = fromClient.push(chunk);
      } catch {
        close();
        return;
      }
      for (const p of packets) {
        if (p.type === 'connect') {
          version = p.protocolVersion;
          clientId = p.clientId;
          fromBroker.protocolVersion = version;
        }
        if ((p.type === 'puback' || p.type === 'pubcomp') && injected.has(p.packetId)) {
          injected.delete(p.packetId);
          continue;
        }
        if (p.type === 'pubrec' && injected.has(p.packetId)) {
          send(client, { type: 'pubrel', packetId: p.packetId });
          continue;
        }
        send(broker, p);
      }
    });
    broker.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = fromBroker.push(chunk);
      } catch {
        close();
        return;
      }
      for (const p of packets) {
        if (p.type === 'pubrel' && swallowedQos2.has(p.packetId)) {
          swallowedQos2.delete(p.packetId);
          send(broker, { type: 'pubcomp', packetId: p.packetId });
          continue;
        }
        if (p.type === 'publish') {
          for (const out of policy.onPublish(p, link)) send(client, out);
          continue;
        }
        send(client, p);
      }
    });
    client.on('error', close);
    broker.on('error', close);
    client.on('close', () => {
      sockets.delete(client);
      broker.destroy();
    });
    broker.on('close', () => {
      sockets.delete(broker);
      client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    policy,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
