/**
 * A deliberately rate-limited "broker": a loopback TCP proxy in front of a real broker that lets the
 * PUBLISH packets of all its clients together through a shared token bucket of `publishesPerSec` (with a
 * burst of `burstSeconds` of tokens); every other packet (CONNECT, SUBSCRIBE, acknowledgements, PINGREQ)
 * passes at once unless a PUBLISH of the same connection waits ahead of it, since a TCP stream keeps its
 * order. The proxy reads everything its clients send and holds what the bucket has not let through, so
 * above the limit clients never feel backpressure: the backlog, and with it the latency, grows without
 * bound, as with a broker that cannot keep up. Broker → client bytes pass untouched.
 *
 * Packets are framed from the fixed header (type and remaining length) and forwarded byte for byte.
 */
import net, { type AddressInfo } from 'node:net';
import { TokenBucket } from '../../broker/token-bucket.js';

export interface RateLimitedProxy {
  url: string;
  port: number;
  stats: { accepted: number; publishesForwarded: number; mostQueued: number };
  close(): Promise<void>;
}

interface Frame {
  bytes: Buffer;
  publish: boolean;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  pending: Buffer;
  queue: Frame[];
  clientEnded: boolean;
}

/** Splits complete MQTT packets off the front of `buffer`; returns them and the incomplete rest. */
function splitFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    let length = 0;
    let multiplier = 1;
    let i = offset + 1;
    let complete = false;
    for (let n = 0; n < 4 && i < buffer.length; n++, i++) {
      const byte = buffer[i]!;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) {
        complete = true;
        i++;
        break;
      }
    }
    if (!complete || buffer.length < i + length) break;
    frames.push({ bytes: buffer.subarray(offset, i + length), publish: buffer[offset]! >> 4 === 3 });
    offset = i + length;
  }
  return { frames, rest: offset === 0 ? buffer : Buffer.from(buffer.subarray(offset)) };
}

/** Listens on 127.0.0.1, port 0, in front of `upstream`. */
export async function startRateLimitedProxy(upstream: { host: string; port: number }, publishesPerSec: number, burstSeconds = 0.25): Promise<RateLimitedProxy> {
  const bucket = new TokenBucket(publishesPerSec, Math.max(1, publishesPerSec * burstSeconds), Date.now());
  const links = new Set<Link>();
  const stats = { accepted: 0, publishesForwarded: 0, mostQueued: 0 };

  /** Releases what may go now: leading non-PUBLISH frames freely, PUBLISHes one token each, round-robin over the links. */
  const pump = (): void => {
    const now = Date.now();
    const out = new Map<Link, Buffer[]>();
    let queued = 0;
    let progress = true;
    while (progress) {
      progress = false;
      for (const link of links) {
        const chunks = out.get(link) ?? [];
        while (link.queue.length > 0 && !link.queue[0]!.publish) chunks.push(link.queue.shift()!.bytes);
        if (link.queue.length > 0 && bucket.take(now)) {
          chunks.push(link.queue.shift()!.bytes);
          stats.publishesForwarded++;
          progress = true;
        }
        if (chunks.length > 0) out.set(link, chunks);
      }
    }
    for (const [link, chunks] of out) if (!link.upstream.destroyed) link.upstream.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    for (const link of links) {
      queued += link.queue.length;
      if (link.clientEnded && link.queue.length === 0 && !link.upstream.writableEnded) link.upstream.end();
    }
    stats.mostQueued = Math.max(stats.mostQueued, queued);
  };
  // Tokens accrue between ticks (up to the burst), so a late tick catches up instead of losing rate.
  const ticker = setInterval(pump, 5);

  // Half-open: a client that ends its side (after DISCONNECT) still has its queued packets forwarded.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    stats.accepted++;
    const upstreamSocket = net.connect({ ...upstream, allowHalfOpen: true });
    const link: Link = { client, upstream: upstreamSocket, pending: Buffer.alloc(0), queue: [], clientEnded: false };
    links.add(link);
    const teardown = (): void => {
      links.delete(link);
      client.destroy();
      upstreamSocket.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      const { frames, rest } = splitFrames(link.pending.length === 0 ? chunk : Buffer.concat([link.pending, chunk]));
      link.pending = rest;
      link.queue.push(...frames);
      pump();
    });
    client.on('end', () => {
      link.clientEnded = true;
      pump();
    });
    upstreamSocket.on('data', (chunk: Buffer) => client.write(chunk));
    upstreamSocket.on('end', () => client.end());
    // The link is over when the broker side closes (after the queue drained and both sides ended), or on any error.
    upstreamSocket.on('close', teardown);
    client.on('close', () => {
      if (link.queue.length === 0) teardown();
    });
    client.on('error', teardown);
    upstreamSocket.on('error', teardown);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    stats,
    async close() {
      clearInterval(ticker);
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      links.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
