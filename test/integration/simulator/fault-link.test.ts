/**
 * Fault links over real sockets on 127.0.0.1: bytes through the latency/bandwidth/stall/slicing pipeline
 * against an echo server, the seeded failure schedule, and the lean client against the in-process broker
 * through a device network (half-open → keepalive timeout, reset → error, slow close → server,
 * downtime → refused until it has elapsed). Assertions are on order, counts and schedules, never on
 * durations; every wait is bounded.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeanClient } from '../../../simulator/client/lean-client.js';
import { openTransport } from '../../../simulator/client/transport.js';
import type { LeanClientHandler, LeanClientOptions } from '../../../simulator/client/types.js';
import { createDeviceNetwork, createFaultLink, type LinkEvent } from '../../../simulator/faults/link.js';
import { resolveProfile, type NetworkOverrides } from '../../../simulator/faults/profile.js';
import type { DisconnectCause } from '../../../simulator/metrics/types.js';
import { createPrng } from '../../../simulator/scenario/prng.js';
import { startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';

const WAIT_MS = 15_000;

let echo: net.Server;
let echoPort = 0;
const echoSockets = new Set<net.Socket>();

beforeAll(async () => {
  echo = net.createServer((s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as net.AddressInfo).port;
});

afterAll(async () => {
  for (const s of echoSockets) s.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

/** Resolves when `check()` holds, re-checked on every call of the returned `poke`; fails after `ms` saying `what`. */
function watcher(): { poke(): void; until(check: () => boolean, what: string, ms?: number): Promise<void> } {
  const waiters = new Set<() => void>();
  return {
    poke: () => {
      for (const w of [...waiters]) w();
    },
    until(check, what, ms = WAIT_MS) {
      let waiter = (): void => {};
      return withTimeout(new Promise<void>((resolve) => {
        waiter = () => { if (check()) resolve(); };
        waiters.add(waiter);
        waiter();
      }), ms, what).finally(() => waiters.delete(waiter));
    },
  };
}

/** Sends `data` through `link` in uneven chunks and resolves with everything echoed back. */
async function roundTrip(link: Duplex, data: Buffer): Promise<Buffer> {
  const received: Buffer[] = [];
  let length = 0;
  const w = watcher();
  link.on('data', (chunk: Buffer) => {
    received.push(chunk);
    length += chunk.length;
    w.poke();
  });
  link.on('error', () => w.poke());
  const sizes = [1, 7, 1500, 65_536, 333, 9000];
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const end = Math.min(data.length, offset + sizes[i % sizes.length]!);
    link.write(data.subarray(offset, end));
    offset = end;
  }
  await w.until(() => length >= data.length, `only ${length} of ${data.length} bytes came back`, 60_000);
  return Buffer.concat(received);
}

describe('a fault link carries every byte, in order', () => {
  it('1 MB both ways under latency, jitter, slicing, a bandwidth limit and stalls', async () => {
    const profile = resolveProfile({
      latency: { dist: 'uniform', min: 0, max: 3 },
      jitterMs: 2,
      bandwidth: 50_000_000,
      maxSegment: 1000,
      loss: { model: 'random', p: 0.01, stallMs: 5 },
      down: { latency: { dist: 'pareto', min: 0.5, alpha: 1.5, max: 10 }, maxSegment: 777, loss: { model: 'gilbert-elliott', pGoodToBad: 0.01, pBadToGood: 0.3, lossGood: 0, lossBad: 0.5, stallMs: 5 } },
    });
    const events: LinkEvent[] = [];
    const link = createFaultLink(profile, createPrng(5), () => net.connect({ host: '127.0.0.1', port: echoPort }), { onEvent: (e) => events.push(e) });
    const data = randomBytes(1024 * 1024);
    const back = await roundTrip(link, data);
    expect(back.length).toBe(data.length);
    expect(back.equals(data)).toBe(true);
    expect(events.filter((e) => e.type === 'connect')).toHaveLength(1);
    expect(events.some((e) => e.type === 'stall' && e.direction === 'up')).toBe(true);
    expect(events.some((e) => e.type === 'stall' && e.direction === 'down')).toBe(true);
    link.destroy();
  }, 90_000);

  it('passes bytes straight through a transparent (lan) profile', async () => {
    const link = createFaultLink(resolveProfile('lan'), createPrng(1), () => net.connect({ host: '127.0.0.1', port: echoPort }));
    const data = randomBytes(1024 * 1024);
    expect((await roundTrip(link, data)).equals(data)).toBe(true);
    link.destroy();
  });

  it('forwards the end of the stream after the bytes before it', async () => {
    const link = createFaultLink(resolveProfile({ latency: { dist: 'fixed', ms: 2 }, maxSegment: 10 }), createPrng(2), () => net.connect({ host: '127.0.0.1', port: echoPort }));
    const chunks: Buffer[] = [];
    const w = watcher();
    let ended = false;
    link.on('data', (c: Buffer) => chunks.push(c));
    link.on('end', () => {
      ended = true;
      w.poke();
    });
    link.end(Buffer.from('hello, slow world'));
    await w.until(() => ended, 'the echoed stream never ended');
    expect(Buffer.concat(chunks).toString()).toBe('hello, slow world');
    expect(chunks.length).toBeGreaterThanOrEqual(2);
  });
});

describe('the failure schedule of a device network', () => {
  const profile = resolveProfile({
    disconnects: { mtbfMs: 40, downtimeMs: { min: 5, max: 20 } },
    slowCloseMs: { min: 1, max: 5 },
  });

  /** A device that reconnects (after 2 ms) until its network has failed `n` times; returns its event log. */
  async function runDevice(seed: number, n: number): Promise<LinkEvent[]> {
    const events: LinkEvent[] = [];
    let current: Duplex | null = null;
    const w = watcher();
    const { createStream } = createDeviceNetwork<object>(profile, createPrng(seed, 2, 0), () => ({ stream: net.connect({ host: '127.0.0.1', port: echoPort }), readyEvent: 'connect' }), {
      onEvent: (e) => {
        events.push(e);
        // A half-open link never closes by itself; this device's "keepalive" gives up on it at once.
        if (e.type === 'cut' && e.mode === 'halfOpen') setImmediate(() => current?.destroy());
        w.poke();
      },
    });
    const failures = (): number => events.filter((e) => e.type === 'failure').length;
    while (failures() < n) {
      const stream = createStream(new URL(`mqtt://127.0.0.1:${echoPort}`), {});
      current = stream;
      await withTimeout(new Promise<void>((resolve) => {
        stream.on('error', () => undefined);
        stream.on('end', () => stream.destroy());
        stream.on('close', () => resolve());
        stream.resume();
      }), WAIT_MS, `attempt ${events.length} never ended; events ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return events;
  }

  const failuresOf = (events: LinkEvent[], n: number): LinkEvent[] => events.filter((e) => e.type === 'failure').slice(0, n);

  it('is the same for the same seed and different for another', async () => {
    const [a, b, c] = await Promise.all([runDevice(11, 6), runDevice(11, 6), runDevice(12, 6)]);
    expect(failuresOf(a, 6)).toEqual(failuresOf(b, 6));
    expect(failuresOf(a, 6)).not.toEqual(failuresOf(c, 6));
    // Every failure that hit a live connection is logged as a cut with the failure's mode.
    for (const log of [a, b, c]) {
      for (let i = 0; i < log.length; i++) {
        const e = log[i]!;
        if (e.type !== 'cut') continue;
        const failure = log.slice(0, i).reverse().find((f) => f.type === 'failure');
        expect(failure !== undefined && failure.type === 'failure' && failure.mode).toBe(e.mode);
      }
    }
  }, 30_000);
});

// ------------------------------------------------------------------------------------------------
// The lean client through a device network, against the reference broker.

interface Disconnect { cause: DisconnectCause; detail: string; wasConnected: boolean }

class Probe {
  readonly connects: number[] = [];
  readonly disconnects: Disconnect[] = [];
  readonly events: LinkEvent[] = [];
  readonly w = watcher();
  client!: LeanClient<Probe>;
}

const handler: LeanClientHandler<Probe> = {
  onConnect: (p) => {
    p.connects.push(p.events.length);
    p.w.poke();
  },
  onDisconnect: (p, cause, detail, wasConnected) => {
    p.disconnects.push({ cause, detail, wasConnected });
    p.w.poke();
  },
  onMessage: () => undefined,
  onAck: () => undefined,
};

let broker: TestBroker;
const probes: Probe[] = [];
let ids = 0;

beforeAll(async () => {
  broker = await startBroker();
});
afterEach(() => {
  for (const p of probes.splice(0)) p.client.destroy();
});
afterAll(async () => {
  await broker.close();
});

function probe(overrides: NetworkOverrides, seed: number, options: Partial<LeanClientOptions> = {}): Probe {
  const p = new Probe();
  const { createStream } = createDeviceNetwork<LeanClientOptions>(
    resolveProfile(overrides),
    createPrng(seed, 2, 0),
    (url, o) => openTransport(url, { ...o, createStream: undefined }),
    { onEvent: (e) => {
      p.events.push(e);
      p.w.poke();
    } },
  );
  p.client = new LeanClient<Probe>({
    url: broker.url,
    protocolVersion: 5,
    clientId: `fault-${process.pid}-${++ids}`,
    clean: true,
    sessionExpirySec: 0,
    keepaliveSec: 30,
    inflightWindow: 10,
    receiveMaximum: 10,
    maxQueued: 100,
    connectTimeoutMs: 5000,
    reconnect: { enabled: true, initialDelayMs: 10, maxDelayMs: 40, multiplier: 2 },
    random: createPrng(seed, 9),
    createStream,
    ...options,
  }, handler, p);
  probes.push(p);
  p.client.start();
  return p;
}

const onlyMode = (mode: 'reset' | 'halfOpen' | 'slowClose'): NetworkOverrides['failure'] => ({ reset: mode === 'reset' ? 1 : 0, halfOpen: mode === 'halfOpen' ? 1 : 0, slowClose: mode === 'slowClose' ? 1 : 0 });

describe('link failures as the lean client sees them', () => {
  it("half-open: nothing arrives, only the client's keepalive notices ('timeout')", async () => {
    const p = probe({ latency: { dist: 'fixed', ms: 1 }, disconnects: { mtbfMs: 300, downtimeMs: { min: 0, max: 0 } }, failure: onlyMode('halfOpen') }, 3, { keepaliveSec: 1 });
    await p.w.until(() => p.disconnects.some((d) => d.wasConnected), `no established connection was lost; ${JSON.stringify(p.disconnects)}`);
    const lost = p.disconnects.find((d) => d.wasConnected)!;
    expect(lost.cause).toBe('timeout');
    const cut = p.events.findIndex((e) => e.type === 'cut');
    expect(p.events[cut]).toMatchObject({ type: 'cut', mode: 'halfOpen' });
    expect(p.connects[0]).toBeLessThanOrEqual(cut);
  });

  it("reset: the client sees an error (ECONNRESET) at once and reconnects", async () => {
    const p = probe({ disconnects: { mtbfMs: 200, downtimeMs: { min: 0, max: 0 } }, failure: onlyMode('reset') }, 4);
    await p.w.until(() => p.connects.length >= 2, `never reconnected after a reset; ${JSON.stringify(p.disconnects)}`);
    const lost = p.disconnects.find((d) => d.wasConnected)!;
    expect(lost).toMatchObject({ cause: 'error', detail: 'ECONNRESET' });
  });

  it("slow close: the client sees the end of the stream ('server') only after the delay", async () => {
    const p = probe({ disconnects: { mtbfMs: 200, downtimeMs: { min: 0, max: 0 } }, failure: onlyMode('slowClose'), slowCloseMs: { min: 20, max: 50 } }, 5);
    await p.w.until(() => p.disconnects.some((d) => d.wasConnected), `no established connection was lost; ${JSON.stringify(p.disconnects)}`);
    expect(p.disconnects.find((d) => d.wasConnected)!.cause).toBe('server');
    expect(p.events.find((e) => e.type === 'cut')).toMatchObject({ mode: 'slowClose' });
  });

  it('downtime: every attempt fails (ENETUNREACH) until the downtime has elapsed, then the device reconnects', async () => {
    const p = probe({ disconnects: { mtbfMs: 200, downtimeMs: { min: 150, max: 250 } }, failure: onlyMode('reset') }, 6);
    await p.w.until(() => {
      const cut = p.events.findIndex((e) => e.type === 'cut');
      return cut >= 0 && p.events.slice(cut).some((e) => e.type === 'connect') && p.connects.length >= 2;
    }, `never reconnected after the downtime; events ${JSON.stringify(p.events)}`);
    const cutIndex = p.events.findIndex((e) => e.type === 'cut');
    const failure = p.events.slice(0, cutIndex).reverse().find((e) => e.type === 'failure') as Extract<LinkEvent, { type: 'failure' }>;
    const after = p.events.slice(cutIndex + 1);
    const reconnect = after.findIndex((e) => e.type === 'connect');
    const refused = after.slice(0, reconnect);
    // The client retried during the downtime (its backoff is far shorter) and each attempt was refused...
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e.type === 'refused' || e.type === 'failure')).toBe(true);
    for (const e of refused) if (e.type === 'refused') expect(e.atMs).toBeLessThan(failure.atMs + failure.downtimeMs);
    // ...and the reconnect came after the downtime.
    expect(after[reconnect]!.atMs).toBeGreaterThanOrEqual(failure.atMs + failure.downtimeMs);
    expect(p.disconnects.some((d) => !d.wasConnected && d.cause === 'error' && d.detail === 'ENETUNREACH')).toBe(true);
  });
});
