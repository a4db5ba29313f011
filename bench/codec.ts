/**
 * Codec throughput: our protocol/ codec against mqtt-packet, in the same process, interleaved.
 *
 *   node dist/bench/codec.js [--runs N] [--ms M] [--warmup M] [--filter STRING]
 *
 * Decode: a stream of STREAM_PACKETS packets, concatenated and cut into CHUNK_BYTES chunks (as socket
 * reads would deliver them, so larger packets straddle chunks), is pushed through one long-lived
 * parser per sample; the result is packets/s.
 * Encode: packets/s of `encodePacket` (a complete buffer, payload copied) and, for PUBLISH, of
 * `encodePublishHeader` (header only, the zero-copy fast path), both against mqtt-packet's `generate`
 * (which always returns one complete buffer).
 *
 * Each comparison is warmed up, then sampled `runs` times with the sides alternating (A B A B ...),
 * each sample running for `ms` milliseconds. Every decoded packet and encoded buffer is folded into a
 * checksum so the JIT cannot drop the work. One JSON document goes to stdout, progress to stderr.
 */
import { availableParallelism, loadavg } from 'node:os';
import mqtt from 'mqtt-packet';
import { encodePacket, encodePublishHeader, PacketParser } from '../protocol/index.js';
import type { Packet, ProtocolVersion } from '../protocol/index.js';
import { summarize, ratio, type Summary } from './lib/stats.js';

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  runs: number;
  ms: number;
  warmupMs: number;
  filter: string | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { runs: 5, ms: 250, warmupMs: 100, filter: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    const number = (): number => {
      const n = Number(value);
      if (value === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${arg} needs a positive number`);
      i++;
      return n;
    };
    switch (arg) {
      case '--runs': opts.runs = Math.max(1, Math.floor(number())); break;
      case '--ms': opts.ms = number(); break;
      case '--warmup': opts.warmupMs = number(); break;
      case '--filter':
        if (value === undefined) throw new Error('--filter needs a string');
        opts.filter = value.toLowerCase();
        i++;
        break;
      case '--help':
        process.stderr.write('usage: node dist/bench/codec.js [--runs N] [--ms M] [--warmup M] [--filter STRING]\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${arg}'`);
    }
  }
  return opts;
}

const STREAM_PACKETS = 1000;
const CHUNK_BYTES = 64 * 1024;
/** Encodes per timing check. */
const ENCODE_BATCH = 64;
/** Distinct packet objects cycled through when encoding (different packet ids). */
const ROTATION = 8;

// ---------------------------------------------------------------------------------------------
// The checksum every measured result is folded into.

let sink = 0;

function consumeOurs(p: Packet): number {
  switch (p.type) {
    case 'publish': return p.payload.length + p.topic.length + (p.packetId ?? 0);
    case 'subscribe': return p.subscriptions.length + p.packetId;
    case 'connect': return p.clientId.length + p.keepalive;
    default: return 1;
  }
}

function consumeTheirs(p: mqtt.Packet): number {
  switch (p.cmd) {
    case 'publish': return p.payload.length + p.topic.length + (p.messageId ?? 0);
    case 'subscribe': return p.subscriptions.length + (p.messageId ?? 0);
    case 'connect': return p.clientId.length + (p.keepalive ?? 0);
    default: return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Cases: the same packet in both object models.

interface Case {
  name: string;
  kind: 'publish' | 'subscribe' | 'connect';
  version: ProtocolVersion;
  /** ROTATION variants of the packet (packet ids differ). */
  ours: Packet[];
  theirs: mqtt.Packet[];
}

const TOPIC = 'sensors/building-7/floor-3/device-0042/temperature';

function payloadOf(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function publishCase(qos: 0 | 1, size: number, label: string, version: ProtocolVersion): Case {
  const payload = payloadOf(size);
  const ours: Packet[] = [];
  const theirs: mqtt.Packet[] = [];
  for (let i = 0; i < ROTATION; i++) {
    const id = 1 + i * 911;
    if (version === 5) {
      ours.push({
        type: 'publish', topic: TOPIC, payload, qos, retain: false, dup: false,
        ...(qos > 0 ? { packetId: id } : {}),
        properties: { messageExpiryInterval: 3600, contentType: 'application/json' },
      });
      theirs.push({
        cmd: 'publish', topic: TOPIC, payload, qos, retain: false, dup: false,
        ...(qos > 0 ? { messageId: id } : {}),
        properties: { messageExpiryInterval: 3600, contentType: 'application/json' },
      });
    } else {
      ours.push({ type: 'publish', topic: TOPIC, payload, qos, retain: false, dup: false, ...(qos > 0 ? { packetId: id } : {}) });
      theirs.push({ cmd: 'publish', topic: TOPIC, payload, qos, retain: false, dup: false, ...(qos > 0 ? { messageId: id } : {}) });
    }
  }
  return { name: `publish-qos${qos}-${label}`, kind: 'publish', version, ours, theirs };
}

function subscribeCase(version: ProtocolVersion): Case {
  const filters: Array<[string, 0 | 1 | 2]> = [
    ['sensors/+/floor-3/+/temperature', 1],
    ['alerts/#', 2],
    ['devices/device-0042/commands', 0],
  ];
  const ours: Packet[] = [];
  const theirs: mqtt.Packet[] = [];
  for (let i = 0; i < ROTATION; i++) {
    const id = 1 + i * 911;
    ours.push({
      type: 'subscribe', packetId: id,
      subscriptions: filters.map(([topic, qos]) =>
        version === 5 ? { topic, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 as const } : { topic, qos }),
    });
    theirs.push({
      cmd: 'subscribe', messageId: id,
      subscriptions: filters.map(([topic, qos]) => (version === 5 ? { topic, qos, nl: false, rap: false, rh: 0 } : { topic, qos })),
    });
  }
  return { name: 'subscribe-3-filters', kind: 'subscribe', version, ours, theirs };
}

function connectCase(version: ProtocolVersion): Case {
  const willPayload = Buffer.from('{"status":"offline"}');
  const password = Buffer.from('s3cr3t-t0ken-0123456789abcdef');
  const ours: Packet[] = [];
  const theirs: mqtt.Packet[] = [];
  for (let i = 0; i < ROTATION; i++) {
    const clientId = `device-${String(i).padStart(4, '0')}`;
    const willTopic = `devices/${clientId}/status`;
    if (version === 5) {
      ours.push({
        type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean: true, keepalive: 60, clientId,
        will: { topic: willTopic, payload: willPayload, qos: 1, retain: true, properties: { willDelayInterval: 10 } },
        username: clientId, password,
        properties: { sessionExpiryInterval: 3600, receiveMaximum: 100 },
      });
      theirs.push({
        cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId,
        will: { topic: willTopic, payload: willPayload, qos: 1, retain: true, properties: { willDelayInterval: 10 } },
        username: clientId, password,
        properties: { sessionExpiryInterval: 3600, receiveMaximum: 100 },
      });
    } else {
      ours.push({
        type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: true, keepalive: 60, clientId,
        will: { topic: willTopic, payload: willPayload, qos: 1, retain: true },
        username: clientId, password,
      });
      theirs.push({
        cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId,
        will: { topic: willTopic, payload: willPayload, qos: 1, retain: true },
        username: clientId, password,
      });
    }
  }
  return { name: 'connect-user-pass-will', kind: 'connect', version, ours, theirs };
}

function allCases(): Case[] {
  const cases: Case[] = [];
  for (const version of [4, 5] as const) {
    for (const qos of [0, 1] as const) {
      cases.push(publishCase(qos, 16, '16B', version));
      cases.push(publishCase(qos, 256, '256B', version));
      cases.push(publishCase(qos, 16 * 1024, '16KB', version));
    }
    cases.push(subscribeCase(version));
    cases.push(connectCase(version));
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Cross-check: both codecs must agree on the bytes, or the comparison is meaningless.

function crossCheck(c: Case): void {
  for (let i = 0; i < ROTATION; i++) {
    const a = encodePacket(c.ours[i]!, c.version);
    const b = mqtt.generate(c.theirs[i]!, { protocolVersion: c.version });
    if (!a.equals(b)) {
      throw new Error(`${c.name} v${c.version}: encodings differ\n ours         ${a.subarray(0, 96).toString('hex')}\n mqtt-packet  ${b.subarray(0, 96).toString('hex')}`);
    }
    if (c.kind === 'publish') {
      const p = c.ours[i] as Extract<Packet, { type: 'publish' }>;
      const h = encodePublishHeader(p, c.version);
      if (h.length + p.payload.length !== a.length || !a.subarray(0, h.length).equals(h)) {
        throw new Error(`${c.name} v${c.version}: encodePublishHeader is not a prefix of encodePacket`);
      }
    }
  }
}

/** Builds the decode stream: STREAM_PACKETS packets cut into CHUNK_BYTES chunks, each its own buffer. */
function buildStream(c: Case): Buffer[] {
  const packets: Buffer[] = [];
  for (let i = 0; i < STREAM_PACKETS; i++) packets.push(encodePacket(c.ours[i % ROTATION]!, c.version));
  const stream = Buffer.concat(packets);
  const chunks: Buffer[] = [];
  for (let pos = 0; pos < stream.length; pos += CHUNK_BYTES) {
    chunks.push(Buffer.from(stream.subarray(pos, Math.min(pos + CHUNK_BYTES, stream.length))));
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// Sides: each returns how many packets one call processed.

type Work = () => number;

interface Side {
  label: string;
  /** Called once per sample: returns the work function for that sample (fresh parser state). */
  prepare(): Work;
}

function ourDecoder(chunks: Buffer[], version: ProtocolVersion): Side {
  return {
    label: 'ours PacketParser.push',
    prepare() {
      const parser = new PacketParser({ protocolVersion: version });
      return () => {
        let n = 0;
        let acc = 0;
        for (let c = 0; c < chunks.length; c++) {
          const packets = parser.push(chunks[c]!);
          for (let i = 0; i < packets.length; i++) acc += consumeOurs(packets[i]!);
          n += packets.length;
        }
        if (n !== STREAM_PACKETS) throw new Error(`ours decoded ${n} of ${STREAM_PACKETS} packets`);
        sink = (sink + acc) | 0;
        return n;
      };
    },
  };
}

function theirDecoder(chunks: Buffer[], version: ProtocolVersion): Side {
  return {
    label: 'mqtt-packet parser.parse',
    prepare() {
      const parser = mqtt.parser({ protocolVersion: version });
      let n = 0;
      let acc = 0;
      let failure: unknown = null;
      parser.on('packet', (p) => {
        acc += consumeTheirs(p);
        n++;
      });
      parser.on('error', (err) => {
        failure = err;
      });
      return () => {
        n = 0;
        acc = 0;
        for (let c = 0; c < chunks.length; c++) parser.parse(chunks[c]!);
        if (failure !== null) throw new Error(`mqtt-packet failed: ${String(failure)}`);
        if (n !== STREAM_PACKETS) throw new Error(`mqtt-packet decoded ${n} of ${STREAM_PACKETS} packets`);
        sink = (sink + acc) | 0;
        return n;
      };
    },
  };
}

function ourEncoder(packets: Packet[], version: ProtocolVersion): Side {
  return {
    label: 'ours encodePacket',
    prepare() {
      return () => {
        let acc = 0;
        for (let i = 0; i < ENCODE_BATCH; i++) {
          const buf = encodePacket(packets[i & (ROTATION - 1)]!, version);
          acc += buf.length + buf[buf.length - 1]!;
        }
        sink = (sink + acc) | 0;
        return ENCODE_BATCH;
      };
    },
  };
}

function ourHeaderEncoder(packets: Packet[], version: ProtocolVersion): Side {
  const publishes = packets as Array<Extract<Packet, { type: 'publish' }>>;
  return {
    label: 'ours encodePublishHeader',
    prepare() {
      return () => {
        let acc = 0;
        for (let i = 0; i < ENCODE_BATCH; i++) {
          const p = publishes[i & (ROTATION - 1)]!;
          const header = encodePublishHeader(p, version);
          acc += header.length + header[header.length - 1]! + p.payload.length;
        }
        sink = (sink + acc) | 0;
        return ENCODE_BATCH;
      };
    },
  };
}

function theirEncoder(packets: mqtt.Packet[], version: ProtocolVersion): Side {
  return {
    label: 'mqtt-packet generate',
    prepare() {
      const opts = { protocolVersion: version };
      return () => {
        let acc = 0;
        for (let i = 0; i < ENCODE_BATCH; i++) {
          const buf = mqtt.generate(packets[i & (ROTATION - 1)]!, opts);
          acc += buf.length + buf[buf.length - 1]!;
        }
        sink = (sink + acc) | 0;
        return ENCODE_BATCH;
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Measurement

/** Runs `work` repeatedly for at least `ms` milliseconds; returns packets per second. */
function sample(side: Side, ms: number): number {
  const work = side.prepare();
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    ops += work();
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return ops / (elapsed / 1000);
}

/** Warm-up then `runs` interleaved samples of every side; returns the samples per side. */
function compare(sides: Side[], opts: Options): number[][] {
  const samples: number[][] = sides.map(() => []);
  const warmRounds = 2;
  for (let w = 0; w < warmRounds; w++) for (const side of sides) sample(side, opts.warmupMs / warmRounds);
  for (let r = 0; r < opts.runs; r++) {
    for (let s = 0; s < sides.length; s++) samples[s]!.push(sample(sides[s]!, opts.ms));
  }
  return samples;
}

interface Row {
  case: string;
  op: 'decode' | 'encode';
  version: ProtocolVersion;
  ours: Summary;
  mqttPacket: Summary;
  ratio: number;
}

function row(name: string, op: Row['op'], version: ProtocolVersion, ours: number[], theirs: number[]): Row {
  const o = summarize(ours);
  const t = summarize(theirs);
  return { case: name, op, version, ours: o, mqttPacket: t, ratio: ratio(o.median, t.median) };
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M/s` : `${(n / 1e3).toFixed(1)}k/s`;
}

function progress(r: Row): void {
  process.stderr.write(
    `  ${r.op.padEnd(6)} v${r.version} ${r.case.padEnd(48)} ours ${fmt(r.ours.median).padStart(10)}  ` +
      `mqtt-packet ${fmt(r.mqttPacket.median).padStart(10)}  ratio ${r.ratio.toFixed(2)}\n`,
  );
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const selected = allCases();
  const jobs: Array<{ c: Case; op: Row['op'] }> = [];
  for (const c of selected) {
    for (const op of ['decode', 'encode'] as const) {
      const key = `${c.name} ${op} v${c.version}`.toLowerCase();
      if (opts.filter === undefined || key.includes(opts.filter)) jobs.push({ c, op });
    }
  }
  if (jobs.length === 0) throw new Error(`no case matches --filter '${opts.filter ?? ''}'`);

  const slots = jobs.reduce((n, j) => n + (j.op === 'encode' && j.c.kind === 'publish' ? 3 : 2), 0);
  const estimate = (slots * (opts.runs * opts.ms + opts.warmupMs)) / 1000;
  process.stderr.write(
    `codec bench: ${jobs.length} comparisons, ${opts.runs} runs x ${opts.ms} ms, warm-up ${opts.warmupMs} ms; ~${estimate.toFixed(0)} s\n`,
  );

  const cpus = availableParallelism();
  const loadStart = loadavg()[0]!;
  if (loadStart > cpus * 0.5) {
    process.stderr.write(`warning: 1-minute load average ${loadStart.toFixed(2)} on ${cpus} CPUs; other processes will add noise\n`);
  }
  const started = performance.now();
  const results: Row[] = [];
  for (const { c, op } of jobs) {
    crossCheck(c);
    if (op === 'decode') {
      const chunks = buildStream(c);
      const [ours, theirs] = compare([ourDecoder(chunks, c.version), theirDecoder(chunks, c.version)], opts);
      const r = row(c.name, 'decode', c.version, ours!, theirs!);
      results.push(r);
      progress(r);
    } else if (c.kind === 'publish') {
      const [full, header, theirs] = compare(
        [ourEncoder(c.ours, c.version), ourHeaderEncoder(c.ours, c.version), theirEncoder(c.theirs, c.version)],
        opts,
      );
      for (const r of [
        row(`${c.name}/encodePacket`, 'encode', c.version, full!, theirs!),
        row(`${c.name}/encodePublishHeader`, 'encode', c.version, header!, theirs!),
      ]) {
        results.push(r);
        progress(r);
      }
    } else {
      const [ours, theirs] = compare([ourEncoder(c.ours, c.version), theirEncoder(c.theirs, c.version)], opts);
      const r = row(c.name, 'encode', c.version, ours!, theirs!);
      results.push(r);
      progress(r);
    }
  }

  const minRatio = (rows: Row[]): number | null => (rows.length === 0 ? null : Math.min(...rows.map((r) => r.ratio)));
  const publish = results.filter((r) => r.case.startsWith('publish-'));
  const summary = {
    publishDecodeRatioMin: minRatio(publish.filter((r) => r.op === 'decode')),
    /** Over every PUBLISH encode row, full copy and header-only. */
    publishEncodeRatioMin: minRatio(publish.filter((r) => r.op === 'encode')),
    publishEncodeFullRatioMin: minRatio(publish.filter((r) => r.case.endsWith('/encodePacket'))),
    publishEncodeHeaderOnlyRatioMin: minRatio(publish.filter((r) => r.case.endsWith('/encodePublishHeader'))),
  };
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`done in ${seconds.toFixed(1)} s (checksum ${sink})\n`);

  const doc = {
    node: process.version,
    date: new Date().toISOString(),
    runs: opts.runs,
    config: {
      msPerSample: opts.ms,
      warmupMs: opts.warmupMs,
      streamPackets: STREAM_PACKETS,
      chunkBytes: CHUNK_BYTES,
      encodeBatch: ENCODE_BATCH,
      unit: 'packets/s',
      filter: opts.filter ?? null,
      seconds: Math.round(seconds * 10) / 10,
      cpus,
      loadAvg1m: { start: Math.round(loadStart * 100) / 100, end: Math.round(loadavg()[0]! * 100) / 100 },
    },
    results,
    summary,
  };
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

main();
