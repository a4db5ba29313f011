/**
 * The crash-cycle engine shared by the crash durability test (test/e2e/crash-durability.test.ts, through
 * test/helpers/crash-harness.ts) and the soak script (crash-soak.ts).
 *
 * One rig = one data dir, one broker child process (`mqtt-sim broker --port 0 --data-dir DIR`, restarted on
 * the same dir after each kill) and a fixed cast of lean raw-socket clients, all with persistent sessions:
 *
 * - publishers (`crash-pub-N`, MQTT 5 and 3.1.1 alternating) publish numbered messages
 *   (payload `N:SEQ:QOS`, topic `crash/data/N`), QoS 1 and QoS 2 mixed by a seeded PRNG, with at most
 *   `window` unacknowledged. Each keeps its own inflight state, like a real client's session state:
 *   after a reconnect it resends every unacknowledged PUBLISH with DUP, and PUBREL where PUBREC arrived.
 *   A message counts as acknowledged on PUBACK (QoS 1) or PUBCOMP (QoS 2), never before.
 * - subscribers on `crash/data/#` at QoS 1 and QoS 2 (both protocol versions), one of them offline
 *   during the load so its messages wait in the stored queue. They acknowledge what they receive
 *   (QoS 2: PUBREC → PUBREL → PUBCOMP) and remember QoS 2 packet ids until PUBREL, so a resent PUBLISH
 *   of a message they already have is acknowledged, not delivered again (the receiver side of
 *   exactly-once). A delivery counts when the PUBLISH is received; every (publisher, seq) is counted
 *   per subscriber, so a second delivery of a QoS 2 message is a duplicate.
 * - `crash-subx`, which subscribes to a new filter at a random moment of each load: a SUBACK it got
 *   means the subscription must exist after the restart.
 * - a retained message (`crash/retained/state`) set and confirmed (PUBACK) at the start of each cycle,
 *   looked up after the restart by a new clean-session client.
 *
 * A cycle: set the retained message → take the offline subscriber offline → start the load → SIGKILL the
 * broker at a random moment (seeded, `killAfterMs`; some clients stop reading up to 40 ms before, as if
 * the last packets were lost with the connection) → wait for it to be gone → restart it on the same
 * data dir → reconnect everyone (sessions must be present; publishers complete their flows; in some
 * cycles the broker is killed and restarted once more during this recovery) → publish a marker on
 * `crash/data/marker` (and on the new subx filter) → wait until every subscriber has it and every
 * acknowledged message → check the retained message → report. Every wait is bounded.
 *
 * The engine does not use vitest; it throws on harness failures (timeouts, a broker that will not
 * start, protocol errors) and reports delivery-guarantee results as counts, so the caller asserts them.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { encodePacket } from '../../protocol/encoder.js';
import type { ConnackPacket, ConnectPacket, Packet, PublishPacket, QoS, SubackPacket } from '../../protocol/packets.js';
import { PacketParser } from '../../protocol/parser.js';

// ------------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same sequence. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------------------------------
// Child processes

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the engine needs of a child process (test/helpers/child-process.ts's Child satisfies it). */
export interface ProcessHandle {
  readonly commandLine: string;
  waitForLine(match: (line: string) => boolean, ms: number, what: string): Promise<string>;
  exited(ms: number): Promise<ProcessExit>;
  hasExited(): boolean;
  kill(signal?: NodeJS.Signals): void;
  stderr(): string;
}

export type Spawner = (command: string, args: readonly string[]) => ProcessHandle;

const spawnedByEngine = new Set<ProcessHandle>();

/** A minimal spawner for scripts (tests pass the suite's own, so their afterEach cleanup covers it). */
export function spawnProcess(command: string, args: readonly string[]): ProcessHandle {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let exit: ProcessExit | undefined;
  const waits = new Waits();
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    waits.wake();
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const commandLine = [command, ...args].join(' ');
  const handle: ProcessHandle = {
    commandLine,
    waitForLine: (match, ms, what) =>
      waits.until(() => {
        const line = lines.find(match);
        if (line !== undefined) return line;
        if (exit !== undefined) throw new Error(`${what}: the process exited first (${JSON.stringify(exit)}); stderr: ${stderr.trim()}`);
        return undefined;
      }, ms, () => `${what}; stdout: ${lines.join(' | ')}; stderr: ${stderr.trim()}`),
    exited: (ms) => waits.until(() => exit, ms, () => `${commandLine} never exited`),
    hasExited: () => exit !== undefined,
    kill(signal = 'SIGTERM') {
      if (exit === undefined) proc.kill(signal);
    },
    stderr: () => stderr,
  };
  proc.once('close', (code, signal) => {
    exit = { code, signal };
    spawnedByEngine.delete(handle);
    waits.wake();
  });
  proc.once('error', (err) => {
    stderr += `spawn failed: ${err.message}\n`;
    if (proc.pid === undefined) {
      exit = { code: null, signal: null };
      spawnedByEngine.delete(handle);
      waits.wake();
    }
  });
  spawnedByEngine.add(handle);
  return handle;
}

/** SIGKILLs every process spawnProcess started that is still running, and waits (bounded) for each. */
export async function killAllSpawned(ms = 5000): Promise<void> {
  const left = [...spawnedByEngine];
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited(ms)));
}

// ------------------------------------------------------------------------------------------------
// Bounded waits

/** Waits on conditions re-checked whenever something happened (`wake`), each with a deadline. */
export class Waits {
  private readonly checks = new Set<() => void>();
  /** Set once something broke that every wait should report (e.g. a connection lost unexpectedly). */
  fatal: Error | undefined;

  wake(): void {
    for (const check of [...this.checks]) check();
  }

  fail(err: Error): void {
    this.fatal ??= err;
    this.wake();
  }

  /** Resolves with the first non-undefined value of `ready()`; rejects after `ms`, on `fatal` or if `ready` throws. */
  until<T>(ready: () => T | undefined, ms: number, what: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.checks.delete(check);
      };
      const check = (): void => {
        if (this.fatal !== undefined) {
          done();
          reject(new Error(`${what()}: ${this.fatal.message}`));
          return;
        }
        let value: T | undefined;
        try {
          value = ready();
        } catch (err) {
          done();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (value !== undefined) {
          done();
          resolve(value);
        }
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms: ${what()}`));
      }, ms);
      this.checks.add(check);
      check();
    });
  }
}

// ------------------------------------------------------------------------------------------------
// A lean MQTT client over one net.Socket at a time

type ClientVersion = 4 | 5;

/** Session expiry asked for by MQTT 5 clients: one day, far longer than any run. */
const SESSION_EXPIRY = 86_400;

class LeanClient {
  readonly clientId: string;
  readonly version: ClientVersion;
  private socket: net.Socket | undefined;
  /** CONNACK accepted and the socket still open. */
  connected = false;
  /** No socket, or the current one has closed. */
  closed = true;
  /** A close we caused or expect (DISCONNECT, broker kill); any other close is fatal for the rig. */
  expectClose = true;
  /**
   * Drops everything that arrives, as if it had been lost with the connection (set shortly before a
   * kill): acknowledgements never seen must be resent for, deliveries never seen must be redelivered.
   */
  deaf = false;
  connack: ConnackPacket | undefined;
  readonly subacks = new Map<number, SubackPacket>();
  pingresps = 0;
  private nextControlId = 1;

  constructor(
    clientId: string,
    version: ClientVersion,
    private readonly waits: Waits,
    private readonly onPacket: (packet: Packet) => void,
    private readonly onConnected: () => void,
    /** MQTT 5: ask for a session expiry (3.1.1 persistence comes from CleanSession 0 alone). */
    private readonly persistent = true,
  ) {
    this.clientId = clientId;
    this.version = version;
  }

  /** Opens a connection and sends CONNECT; resolves with an accepted CONNACK (bounded). */
  async connect(port: number, clean: boolean, ms: number): Promise<ConnackPacket> {
    if (!this.closed) throw new Error(`${this.clientId}: connect() while still connected`);
    const version = this.version;
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const parser = new PacketParser({ protocolVersion: version });
    this.socket = socket;
    this.closed = false;
    this.connected = false;
    this.connack = undefined;
    this.expectClose = false;
    this.deaf = false;
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.socket) return;
      let packets: Packet[];
      try {
        packets = parser.push(chunk);
      } catch (err) {
        this.waits.fail(new Error(`${this.clientId}: the broker sent bytes that did not parse: ${(err as Error).message}`));
        socket.destroy();
        return;
      }
      socket.cork();
      try {
        for (const p of packets) this.receive(p);
      } finally {
        socket.uncork();
      }
      this.waits.wake();
    });
    socket.on('error', () => {
      // 'close' follows; a kill of the broker resets connections.
    });
    socket.on('close', () => {
      if (socket !== this.socket) return;
      this.connected = false;
      this.closed = true;
      if (!this.expectClose) this.waits.fail(new Error(`${this.clientId}: the connection closed unexpectedly`));
      this.waits.wake();
    });
    const connect: ConnectPacket = {
      type: 'connect', protocolVersion: version, protocolName: 'MQTT', clean, keepalive: 0, clientId: this.clientId,
      // 3.1.1: CleanSession 0 keeps the session; MQTT 5: a session expiry (clean start or not).
      ...(version === 5 && this.persistent ? { properties: { sessionExpiryInterval: SESSION_EXPIRY } } : {}),
    };
    socket.write(encodePacket(connect, version));
    const connack = await this.waits.until(
      () => {
        if (this.connack !== undefined) return this.connack;
        if (this.closed) throw new Error(`${this.clientId}: the connection closed before CONNACK`);
        return undefined;
      },
      ms,
      () => `${this.clientId}: no CONNACK`,
    );
    if (connack.reasonCode !== 0) throw new Error(`${this.clientId}: connection refused with code 0x${connack.reasonCode.toString(16)}`);
    return connack;
  }

  private receive(p: Packet): void {
    if (this.deaf) return;
    if (p.type === 'publish') p.payload = Buffer.from(p.payload); // views of the chunk: keep copies
    if (p.type === 'connack') {
      this.connack = p;
      if (p.reasonCode === 0) {
        this.connected = true;
        this.onConnected();
      }
      return;
    }
    if (!this.connected) return;
    if (p.type === 'suback') this.subacks.set(p.packetId, p);
    else if (p.type === 'pingresp') this.pingresps++;
    else this.onPacket(p);
  }

  send(packet: Packet): void {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed || !this.connected) return;
    socket.write(encodePacket(packet, this.version));
  }

  /** SUBSCRIBE; the packet id is returned at once (the SUBACK lands in `subacks`). */
  sendSubscribe(filter: string, qos: QoS): number {
    const packetId = this.nextControlId++;
    if (this.nextControlId > 65535) this.nextControlId = 1;
    this.send({ type: 'subscribe', packetId, subscriptions: [{ topic: filter, qos }] });
    return packetId;
  }

  async subscribe(filter: string, qos: QoS, ms: number): Promise<SubackPacket> {
    const id = this.sendSubscribe(filter, qos);
    const suback = await this.waits.until(() => this.subacks.get(id), ms, () => `${this.clientId}: no SUBACK for ${filter}`);
    if (suback.reasonCodes[0] !== qos) throw new Error(`${this.clientId}: SUBACK for ${filter} granted ${suback.reasonCodes[0]}, asked ${qos}`);
    return suback;
  }

  /** PINGREQ → PINGRESP: afterwards everything the broker wrote before it has arrived. */
  async ping(ms: number): Promise<void> {
    const target = this.pingresps + 1;
    this.send({ type: 'pingreq' });
    await this.waits.until(() => (this.pingresps >= target ? true : undefined), ms, () => `${this.clientId}: no PINGRESP`);
  }

  /** Normal DISCONNECT, then waits (bounded) for the broker to close the connection. */
  async disconnect(ms: number): Promise<void> {
    this.expectClose = true;
    this.send({ type: 'disconnect' });
    this.socket?.end();
    await this.waits.until(() => (this.closed ? true : undefined), ms, () => `${this.clientId}: the broker did not close after DISCONNECT`);
  }

  destroy(): void {
    this.expectClose = true;
    this.connected = false;
    this.socket?.destroy();
  }
}

// ------------------------------------------------------------------------------------------------
// Publishers

interface Outgoing {
  /** Load messages: the sequence number; control messages (retained, markers): 0. */
  seq: number;
  qos: 1 | 2;
  topic: string;
  payload: Buffer;
  retain: boolean;
  packetId: number;
  /** QoS 2: PUBREC received (the next step is PUBREL). */
  pubrec: boolean;
  /** For control messages: called on the final acknowledgement. */
  onAck?: () => void;
}

class Publisher {
  readonly index: number;
  readonly client: LeanClient;
  readonly inflight = new Map<number, Outgoing>();
  nextSeq = 1;
  private nextPacketId = 1;
  loadActive = false;
  private loadLeft = 0;
  /** seq → QoS of every acknowledged load message. */
  readonly acked = new Map<number, 1 | 2>();
  ackCount = 0;
  resentPublish = 0;
  resentPubrel = 0;

  constructor(
    index: number,
    version: ClientVersion,
    waits: Waits,
    private readonly window: number,
    private readonly random: () => number,
    private readonly problem: (text: string) => void,
  ) {
    this.index = index;
    this.client = new LeanClient(`crash-pub-${index}`, version, waits, (p) => this.onPacket(p), () => this.onConnected());
  }

  /** Called right after CONNACK: the session's unfinished flows first, in their original order. */
  private onConnected(): void {
    for (const m of this.inflight.values()) {
      if (m.pubrec) {
        this.resentPubrel++;
        this.client.send({ type: 'pubrel', packetId: m.packetId });
      } else {
        this.resentPublish++;
        this.client.send(this.publishPacket(m, true));
      }
    }
    this.fill();
  }

  private publishPacket(m: Outgoing, dup: boolean): PublishPacket {
    return { type: 'publish', topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup, packetId: m.packetId };
  }

  private allocatePacketId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    throw new Error(`${this.client.clientId}: no free packet id`);
  }

  private start(m: Omit<Outgoing, 'packetId' | 'pubrec'>): void {
    const out: Outgoing = { ...m, packetId: this.allocatePacketId(), pubrec: false };
    this.inflight.set(out.packetId, out);
    this.client.send(this.publishPacket(out, false));
  }

  startLoad(messages: number): void {
    this.loadActive = true;
    this.loadLeft = messages;
    this.fill();
  }

  stopLoad(): void {
    this.loadActive = false;
  }

  private fill(): void {
    while (this.loadActive && this.loadLeft > 0 && this.client.connected && this.inflight.size < this.window) {
      const seq = this.nextSeq++;
      const qos: 1 | 2 = this.random() < 0.5 ? 1 : 2;
      this.loadLeft--;
      this.start({ seq, qos, topic: `crash/data/${this.index}`, payload: Buffer.from(`${this.index}:${seq}:${qos}`), retain: false });
    }
  }

  /** A control publish (retained message, marker); resolves on PUBACK/PUBCOMP (bounded by the caller). */
  publishControl(topic: string, payload: string, qos: 1 | 2, retain: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      this.start({ seq: 0, qos, topic, payload: Buffer.from(payload), retain, onAck: resolve });
    });
  }

  private onPacket(p: Packet): void {
    switch (p.type) {
      case 'puback': {
        const m = this.inflight.get(p.packetId);
        if (m === undefined || m.qos !== 1) {
          this.problem(`${this.client.clientId}: PUBACK for packet id ${p.packetId}, which is not a QoS 1 publish in flight`);
          return;
        }
        if (!this.acceptReason(p.reasonCode, 'PUBACK', m)) return;
        this.finish(m);
        return;
      }
      case 'pubrec': {
        const m = this.inflight.get(p.packetId);
        if (m === undefined || m.qos !== 2) {
          this.problem(`${this.client.clientId}: PUBREC for packet id ${p.packetId}, which is not a QoS 2 publish in flight`);
          return;
        }
        if (!this.acceptReason(p.reasonCode, 'PUBREC', m)) return;
        m.pubrec = true;
        this.client.send({ type: 'pubrel', packetId: m.packetId });
        return;
      }
      case 'pubcomp': {
        const m = this.inflight.get(p.packetId);
        // A PUBCOMP for an id we no longer hold: the broker answered a resent PUBREL twice; harmless.
        if (m === undefined) return;
        if (m.qos !== 2 || !m.pubrec) {
          this.problem(`${this.client.clientId}: PUBCOMP for packet id ${p.packetId} before its PUBREC`);
          return;
        }
        this.finish(m);
        return;
      }
      case 'disconnect':
        this.problem(`${this.client.clientId}: DISCONNECT from the broker (reason 0x${(p.reasonCode ?? 0).toString(16)})`);
        return;
      default:
        this.problem(`${this.client.clientId}: unexpected ${p.type.toUpperCase()}`);
    }
  }

  /** MQTT 5 reason codes: an error is not an acknowledgement; 0x10 means a subscription was missing. */
  private acceptReason(code: number | undefined, what: string, m: Outgoing): boolean {
    if (code === undefined || code === 0) return true;
    if (code === 0x10) {
      // Only the data topics always have subscribers (the retained topic has none while nobody looks).
      if (!m.topic.startsWith('crash/data/') && !m.topic.startsWith('crash/sub/')) return true;
      this.problem(`${this.client.clientId}: ${what} 0x10 (no matching subscribers) for ${m.topic} seq ${m.seq}: subscriptions were lost`);
      return true;
    }
    this.problem(`${this.client.clientId}: ${what} with error 0x${code.toString(16)} for ${m.topic} seq ${m.seq}`);
    this.inflight.delete(m.packetId);
    return false;
  }

  private finish(m: Outgoing): void {
    this.inflight.delete(m.packetId);
    if (m.onAck !== undefined) m.onAck();
    else {
      this.acked.set(m.seq, m.qos);
      this.ackCount++;
    }
    this.fill();
  }
}

// ------------------------------------------------------------------------------------------------
// Subscribers

const DATA_FILTER = 'crash/data/#';
const MARKER_TOPIC = 'crash/data/marker';
const RETAINED_TOPIC = 'crash/retained/state';

class Subscriber {
  readonly client: LeanClient;
  readonly qos: 1 | 2;
  /** Offline during each load, so its messages wait in the stored queue. */
  readonly offlineDuringLoad: boolean;
  /** QoS 2 packet ids received and not yet released (PUBREL): the receiver's half of exactly-once. */
  private readonly inboundQos2 = new Set<number>();
  /** `publisher:seq` → deliveries. */
  readonly counts = new Map<string, number>();
  receipts = 0;
  qos1Duplicates = 0;
  qos2Duplicates = 0;
  readonly duplicateExamples: string[] = [];
  readonly markers = new Set<number>();
  /** Payloads of messages on other topics (the subx filters). */
  readonly other = new Set<string>();

  constructor(
    clientId: string,
    version: ClientVersion,
    qos: 1 | 2,
    offlineDuringLoad: boolean,
    waits: Waits,
    private readonly problem: (text: string) => void,
  ) {
    this.qos = qos;
    this.offlineDuringLoad = offlineDuringLoad;
    this.client = new LeanClient(clientId, version, waits, (p) => this.onPacket(p), () => {});
  }

  private onPacket(p: Packet): void {
    switch (p.type) {
      case 'publish':
        if (p.qos === 2) {
          const id = p.packetId!;
          // [MQTT-4.3.3-?] until PUBREL, a PUBLISH with the same id is acknowledged, not delivered again.
          if (!this.inboundQos2.has(id)) {
            this.inboundQos2.add(id);
            this.deliver(p);
          }
          this.client.send({ type: 'pubrec', packetId: id });
        } else {
          this.deliver(p);
          if (p.qos === 1) this.client.send({ type: 'puback', packetId: p.packetId! });
        }
        return;
      case 'pubrel':
        this.inboundQos2.delete(p.packetId);
        this.client.send({ type: 'pubcomp', packetId: p.packetId });
        return;
      case 'disconnect':
        this.problem(`${this.client.clientId}: DISCONNECT from the broker (reason 0x${(p.reasonCode ?? 0).toString(16)})`);
        return;
      default:
        this.problem(`${this.client.clientId}: unexpected ${p.type.toUpperCase()}`);
    }
  }

  private deliver(p: PublishPacket): void {
    this.receipts++;
    const text = p.payload.toString();
    if (p.topic === MARKER_TOPIC) {
      this.markers.add(Number(text.slice('marker:'.length)));
      return;
    }
    if (!p.topic.startsWith('crash/data/')) {
      this.other.add(text);
      return;
    }
    const [pub, seq, qosText] = text.split(':');
    const messageQos = Number(qosText);
    const key = `${pub}:${seq}`;
    const expectedQos = Math.min(messageQos, this.qos);
    if (p.qos !== expectedQos) this.problem(`${this.client.clientId}: ${key} (QoS ${messageQos}) arrived at QoS ${p.qos}, expected ${expectedQos}`);
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    if (n === 1) return;
    if (expectedQos === 2) {
      this.qos2Duplicates++;
      if (this.duplicateExamples.length < 10) this.duplicateExamples.push(`${key} delivered ${n} times (packet id ${p.packetId}, dup ${p.dup})`);
    } else {
      this.qos1Duplicates++;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The rig

export interface CrashRigOptions {
  /** Path of the built CLI entry (dist/cli/main.js). */
  cliMain: string;
  /** The broker's data dir; the same one for every restart. */
  dataDir: string;
  seed?: number;
  /** Publishers (default 3). */
  publishers?: number;
  /** Unacknowledged publishes per publisher (default 32). */
  window?: number;
  /** Largest number of new messages per publisher per cycle (default 3000: 3 publishers stay under the broker's 10,000 queued messages per session). */
  maxPerCycle?: number;
  /** The kill comes this many ms into the load, uniformly in [min, max] (default [50, 500]). */
  killAfterMs?: [number, number];
  durability?: 'process' | 'power';
  /** How the broker child is spawned (default spawnProcess). */
  spawn?: Spawner;
  /** Probability that a cycle kills the broker a second time, 0-100 ms after the restart (default 0.3). */
  secondKillProbability?: number;
  /** Bound of each phase (start, reconnect, drain), in ms (default 15000). */
  phaseTimeoutMs?: number;
  /** Extra broker flags. */
  brokerArgs?: string[];
}

export interface CycleReport {
  cycle: number;
  killAtMs: number;
  /** SIGKILLs in this cycle: 1, or 2 when the broker was killed again during the recovery. */
  kills: number;
  /** New load messages published in this cycle. */
  published: number;
  /** Load messages acknowledged (PUBACK/PUBCOMP) before the connections dropped. */
  acknowledgedBeforeKill: number;
  /** Load messages of this cycle acknowledged in the end (every one, once publishers completed their flows). */
  acknowledged: number;
  /** PUBLISH (DUP) and PUBREL resent by publishers after the restart. */
  resentPublish: number;
  resentPubrel: number;
  /** (subscriber, acknowledged message) pairs delivered at least once. */
  delivered: number;
  /** (subscriber, acknowledged message) pairs never delivered. */
  lost: number;
  /** Second (or later) deliveries of QoS 2 messages to QoS 2 subscribers seen during this cycle. */
  qos2Duplicates: number;
  /** Allowed duplicates of QoS 1 deliveries seen during this cycle. */
  qos1Duplicates: number;
  retainedOk: boolean;
  subscriptionsOk: boolean;
  /** Whether the per-cycle subx SUBACK arrived before the kill (and so was checked after the restart). */
  subackBeforeKill: boolean;
  restartMs: number;
  durationMs: number;
  problems: string[];
}

export interface CrashTotals {
  cycles: number;
  kills: number;
  published: number;
  acknowledged: number;
  acknowledgedBeforeKill: number;
  delivered: number;
  lost: number;
  qos2Duplicates: number;
  qos1Duplicates: number;
  retainedOk: number;
  subscriptionsOk: number;
  problems: number;
  durationMs: number;
}

export function sumReports(reports: readonly CycleReport[], durationMs: number): CrashTotals {
  const t: CrashTotals = {
    cycles: reports.length, kills: 0, published: 0, acknowledged: 0, acknowledgedBeforeKill: 0, delivered: 0, lost: 0,
    qos2Duplicates: 0, qos1Duplicates: 0, retainedOk: 0, subscriptionsOk: 0, problems: 0, durationMs,
  };
  for (const r of reports) {
    t.kills += r.kills;
    t.published += r.published;
    t.acknowledged += r.acknowledged;
    t.acknowledgedBeforeKill += r.acknowledgedBeforeKill;
    t.delivered += r.delivered;
    t.lost += r.lost;
    t.qos2Duplicates += r.qos2Duplicates;
    t.qos1Duplicates += r.qos1Duplicates;
    if (r.retainedOk) t.retainedOk++;
    if (r.subscriptionsOk) t.subscriptionsOk++;
    t.problems += r.problems.length;
  }
  return t;
}

export function formatCycle(r: CycleReport): string {
  return `cycle ${r.cycle}: kill at ${r.killAtMs} ms${r.kills > 1 ? ' and again during the recovery' : ''}, published ${r.published}, acked before kill ${r.acknowledgedBeforeKill}, ` +
    `acked ${r.acknowledged}, resent ${r.resentPublish} PUBLISH + ${r.resentPubrel} PUBREL, delivered ${r.delivered}, ` +
    `lost ${r.lost}, QoS 2 duplicates ${r.qos2Duplicates}, QoS 1 duplicates ${r.qos1Duplicates}, ` +
    `retained ${r.retainedOk ? 'ok' : 'FAILED'}, subscriptions ${r.subscriptionsOk ? 'ok' : 'FAILED'}` +
    `${r.subackBeforeKill ? '' : ' (subx SUBACK after kill)'}, restart ${r.restartMs} ms, cycle ${r.durationMs} ms` +
    (r.problems.length > 0 ? `\n  problems: ${r.problems.slice(0, 10).join('\n            ')}` : '');
}

const LISTENING = /^mqtt-sim broker listening on [^ ]+:(\d+)$/;

export class CrashRig {
  private readonly options: Required<Omit<CrashRigOptions, 'brokerArgs' | 'spawn'>> & { brokerArgs: string[]; spawn: Spawner };
  private readonly waits = new Waits();
  private readonly random: () => number;
  private readonly publishers: Publisher[] = [];
  private readonly subscribers: Subscriber[] = [];
  private readonly subx: LeanClient;
  private broker: ProcessHandle | undefined;
  private port = 0;
  private cycle = 0;
  private problems: string[] = [];
  private readonly reports: CycleReport[] = [];
  private readonly startedAt = Date.now();
  private closed = false;

  constructor(options: CrashRigOptions) {
    this.options = {
      seed: 1, publishers: 3, window: 32, maxPerCycle: 3000, killAfterMs: [50, 500], durability: 'process', secondKillProbability: 0.3,
      phaseTimeoutMs: 15_000, brokerArgs: [], spawn: spawnProcess, ...options,
    };
    if (this.options.window > 32) throw new Error('window: at most 32 unacknowledged publishes per publisher');
    this.random = createRng(this.options.seed);
    const problem = (text: string): void => {
      this.problems.push(text);
    };
    for (let i = 0; i < this.options.publishers; i++) {
      this.publishers.push(new Publisher(i, i % 2 === 0 ? 5 : 4, this.waits, this.options.window, createRng(this.options.seed * 31 + i + 1), problem));
    }
    this.subscribers.push(
      new Subscriber('crash-sub-q1-v4', 4, 1, false, this.waits, problem),
      new Subscriber('crash-sub-q1-v5', 5, 1, false, this.waits, problem),
      new Subscriber('crash-sub-q2-v4', 4, 2, false, this.waits, problem),
      new Subscriber('crash-sub-q2-v5', 5, 2, false, this.waits, problem),
      new Subscriber('crash-sub-q2-offline', 5, 2, true, this.waits, problem),
    );
    this.subx = new LeanClient('crash-subx', 5, this.waits, (p) => {
      if (p.type === 'publish' && p.qos === 1) this.subx.send({ type: 'puback', packetId: p.packetId! });
      if (p.type === 'publish') this.subxReceived.add(p.payload.toString());
    }, () => {});
  }

  private readonly subxReceived = new Set<string>();

  get cycles(): readonly CycleReport[] {
    return this.reports;
  }

  totals(): CrashTotals {
    return sumReports(this.reports, Date.now() - this.startedAt);
  }

  /** Starts the broker, connects everyone and subscribes (waiting for each SUBACK). */
  async start(): Promise<void> {
    const ms = this.options.phaseTimeoutMs;
    await this.startBroker();
    for (const s of this.subscribers) {
      await s.client.connect(this.port, false, ms);
      await s.client.subscribe(DATA_FILTER, s.qos, ms);
    }
    await this.subx.connect(this.port, false, ms);
    for (const p of this.publishers) await p.client.connect(this.port, false, ms);
  }

  private async startBroker(): Promise<number> {
    const started = Date.now();
    const args = [
      this.options.cliMain, 'broker', '--port', '0', '--data-dir', this.options.dataDir,
      '--durability', this.options.durability, '--sys-interval', '0', ...this.options.brokerArgs,
    ];
    const broker = this.options.spawn(process.execPath, args);
    this.broker = broker;
    const line = await broker.waitForLine((l) => LISTENING.test(l), this.options.phaseTimeoutMs, 'the broker never printed its listening line');
    this.port = Number(LISTENING.exec(line)![1]);
    return Date.now() - started;
  }

  private allClients(): LeanClient[] {
    return [...this.subscribers.map((s) => s.client), this.subx, ...this.publishers.map((p) => p.client)];
  }

  private async expectSession(client: LeanClient): Promise<boolean> {
    const connack = await client.connect(this.port, false, this.options.phaseTimeoutMs);
    if (!connack.sessionPresent) {
      this.problems.push(`${client.clientId}: CONNACK after the restart says session present 0: the persistent session was lost`);
      return false;
    }
    return true;
  }

  /** One crash cycle; throws only when the harness itself cannot go on (timeouts, broker will not start). */
  async runCycle(): Promise<CycleReport> {
    if (this.closed) throw new Error('the rig is closed');
    const ms = this.options.phaseTimeoutMs;
    const cycle = ++this.cycle;
    const started = Date.now();
    this.problems = [];
    const pub0 = this.publishers[0]!;
    const dupBefore = this.subscribers.map((s) => [s.qos1Duplicates, s.qos2Duplicates] as const);
    const seqStart = this.publishers.map((p) => p.nextSeq);
    const ackBefore = this.publishers.map((p) => p.ackCount);
    const resentBefore = this.publishers.map((p) => [p.resentPublish, p.resentPubrel] as const);

    // 1. A retained message, confirmed before the load.
    const retainedPayload = `retained:${cycle}:${Math.floor(this.random() * 1e9)}`;
    await withDeadline(pub0.publishControl(RETAINED_TOPIC, retainedPayload, 1, true), ms, `${pub0.client.clientId}: no PUBACK for the retained message`);

    // 2. The offline subscriber leaves; its messages now wait in the stored queue.
    for (const s of this.subscribers) if (s.offlineDuringLoad) await s.client.disconnect(ms);

    // 3. Load, a new subscription at a random moment, and the kill.
    const [minKill, maxKill] = this.options.killAfterMs;
    const killAtMs = Math.round(minKill + this.random() * (maxKill - minKill));
    const subscribeAtMs = Math.floor(this.random() * killAtMs);
    const subxFilter = `crash/sub/${cycle}`;
    let subxPacketId = -1;
    // Half of the clients (chosen per cycle) stop reading up to 40 ms before the kill: what the broker sent
    // them last is lost with the connection, so they must resend or be sent it again after the restart.
    const deafTimers: NodeJS.Timeout[] = [];
    for (const c of this.allClients()) {
      if (this.random() < 0.5) continue;
      const deafMs = Math.floor(this.random() * Math.min(40, killAtMs));
      deafTimers.push(setTimeout(() => {
        c.deaf = true;
      }, killAtMs - deafMs));
    }
    for (const p of this.publishers) p.startLoad(this.options.maxPerCycle);
    const subscribeTimer = setTimeout(() => {
      subxPacketId = this.subx.sendSubscribe(subxFilter, 1);
    }, subscribeAtMs);
    await delay(killAtMs);
    clearTimeout(subscribeTimer);
    for (const t of deafTimers) clearTimeout(t);
    for (const p of this.publishers) p.stopLoad();
    await this.kill();
    const acknowledgedBeforeKill = this.publishers.reduce((n, p, i) => n + p.ackCount - ackBefore[i]!, 0);
    const subackBeforeKill = subxPacketId > 0 && this.subx.subacks.has(subxPacketId);

    // 4. Restart on the same data dir; everyone comes back to a present session. In some cycles the
    //    broker is killed once more while publishers resend and subscribers are redelivered to.
    let { restartMs, sessionsOk } = await this.restart();
    let kills = 1;
    if (this.random() < this.options.secondKillProbability) {
      await delay(Math.floor(this.random() * 100));
      await this.kill();
      kills++;
      const again = await this.restart();
      restartMs += again.restartMs;
      sessionsOk &&= again.sessionsOk;
    }
    await this.waits.until(() => (this.publishers.every((p) => p.inflight.size === 0) ? true : undefined), ms,
      () => `publishers never completed their flows after the restart: ${this.publishers.map((p) => `${p.client.clientId} ${p.inflight.size} in flight`).join(', ')}`);

    // 5. New publishes reach the old subscriptions without anyone subscribing again.
    await withDeadline(pub0.publishControl(MARKER_TOPIC, `marker:${cycle}`, 2, false), ms, 'no PUBCOMP for the marker');
    if (subackBeforeKill) await withDeadline(pub0.publishControl(subxFilter, `sub:${cycle}`, 1, false), ms, `no PUBACK for ${subxFilter}`);
    let subscriptionsOk = sessionsOk;
    try {
      await this.waits.until(() => (this.subscribers.every((s) => s.markers.has(cycle)) ? true : undefined), ms,
        () => `marker ${cycle} missing at ${this.subscribers.filter((s) => !s.markers.has(cycle)).map((s) => s.client.clientId).join(', ')}`);
    } catch (err) {
      if (this.waits.fatal !== undefined) throw err;
      subscriptionsOk = false;
      this.problems.push(`subscriptions lost: ${(err as Error).message}`);
    }
    if (subackBeforeKill) {
      try {
        await this.waits.until(() => (this.subxReceived.has(`sub:${cycle}`) ? true : undefined), ms, () => `crash-subx never received sub:${cycle} on ${subxFilter}`);
      } catch (err) {
        if (this.waits.fatal !== undefined) throw err;
        subscriptionsOk = false;
        this.problems.push(`a subscription acknowledged before the kill was lost: ${(err as Error).message}`);
      }
    }

    // 6. Every acknowledged message of this cycle at every subscriber (bounded; what is missing is lost).
    const ackedKeys: string[] = [];
    this.publishers.forEach((p, i) => {
      for (let seq = seqStart[i]!; seq < p.nextSeq; seq++) {
        if (p.acked.has(seq)) ackedKeys.push(`${p.index}:${seq}`);
        else this.problems.push(`${p.client.clientId}: seq ${seq} was never acknowledged`);
      }
    });
    const complete = (s: Subscriber): boolean => ackedKeys.every((k) => s.counts.has(k));
    await this.waits.until(() => (this.subscribers.every(complete) ? true : undefined), Math.min(ms, 5000), () => '').catch((err: Error) => {
      if (this.waits.fatal !== undefined) throw err;
    });
    for (const s of this.subscribers) await s.client.ping(ms);
    let delivered = 0;
    let lost = 0;
    for (const s of this.subscribers) {
      const missing: string[] = [];
      for (const k of ackedKeys) {
        if (s.counts.has(k)) delivered++;
        else {
          lost++;
          if (missing.length < 5) missing.push(k);
        }
      }
      if (missing.length > 0) this.problems.push(`${s.client.clientId} never received acknowledged messages, e.g. ${missing.join(', ')}`);
    }

    // 7. The retained message, for a new subscriber.
    const retainedOk = await this.checkRetained(retainedPayload, cycle % 2 === 0 ? 4 : 5);

    let qos1Duplicates = 0;
    let qos2Duplicates = 0;
    this.subscribers.forEach((s, i) => {
      qos1Duplicates += s.qos1Duplicates - dupBefore[i]![0];
      const d = s.qos2Duplicates - dupBefore[i]![1];
      qos2Duplicates += d;
      if (d > 0) this.problems.push(`${s.client.clientId}: ${d} QoS 2 duplicate(s), e.g. ${s.duplicateExamples.slice(-3).join('; ')}`);
    });
    const report: CycleReport = {
      cycle,
      killAtMs,
      kills,
      published: this.publishers.reduce((n, p, i) => n + p.nextSeq - seqStart[i]!, 0),
      acknowledgedBeforeKill,
      acknowledged: ackedKeys.length,
      resentPublish: this.publishers.reduce((n, p, i) => n + p.resentPublish - resentBefore[i]![0], 0),
      resentPubrel: this.publishers.reduce((n, p, i) => n + p.resentPubrel - resentBefore[i]![1], 0),
      delivered,
      lost,
      qos2Duplicates,
      qos1Duplicates,
      retainedOk,
      subscriptionsOk,
      subackBeforeKill,
      restartMs,
      durationMs: Date.now() - started,
      problems: this.problems,
    };
    this.reports.push(report);
    return report;
  }

  /** SIGKILL, then waits (bounded) until the broker is gone and every connection noticed. */
  private async kill(): Promise<void> {
    const ms = this.options.phaseTimeoutMs;
    for (const c of this.allClients()) c.expectClose = true;
    const broker = this.broker!;
    broker.kill('SIGKILL');
    const exit = await broker.exited(ms);
    if (exit.signal !== 'SIGKILL') this.problems.push(`the broker exited with ${JSON.stringify(exit)} before it was killed; stderr: ${broker.stderr().trim()}`);
    await this.waits.until(() => (this.allClients().every((c) => c.closed) ? true : undefined), ms,
      () => `connections still open after the kill: ${this.allClients().filter((c) => !c.closed).map((c) => c.clientId).join(', ')}`);
  }

  /** Starts the broker on the same data dir and reconnects everyone, each to a session that must be present. */
  private async restart(): Promise<{ restartMs: number; sessionsOk: boolean }> {
    const restartMs = await this.startBroker();
    let sessionsOk = true;
    for (const s of this.subscribers) sessionsOk = (await this.expectSession(s.client)) && sessionsOk;
    sessionsOk = (await this.expectSession(this.subx)) && sessionsOk;
    for (const p of this.publishers) sessionsOk = (await this.expectSession(p.client)) && sessionsOk;
    return { restartMs, sessionsOk };
  }

  /** A new clean-session client subscribes to the retained topic: exactly the last confirmed value, flagged RETAIN. */
  private async checkRetained(expected: string, version: ClientVersion): Promise<boolean> {
    const ms = this.options.phaseTimeoutMs;
    const received: PublishPacket[] = [];
    const probe = new LeanClient('crash-probe', version, this.waits, (p) => {
      if (p.type !== 'publish') return;
      received.push(p);
      if (p.qos === 1) probe.send({ type: 'puback', packetId: p.packetId! });
    }, () => {}, false);
    try {
      await probe.connect(this.port, true, ms);
      await probe.subscribe('crash/retained/#', 1, ms);
      try {
        await this.waits.until(() => (received.length > 0 ? true : undefined), Math.min(ms, 5000), () => 'no retained message');
      } catch (err) {
        if (this.waits.fatal !== undefined) throw err;
      }
      await probe.ping(ms);
      await probe.disconnect(ms);
    } finally {
      probe.destroy();
    }
    const texts = received.map((p) => `${p.topic}=${p.payload.toString()}${p.retain ? ' (retain)' : ''}`);
    const ok = received.length === 1 && received[0]!.retain && received[0]!.topic === RETAINED_TOPIC && received[0]!.payload.toString() === expected;
    if (!ok) this.problems.push(`retained: expected ${RETAINED_TOPIC}=${expected} (retain), got ${texts.join(', ') || 'nothing'}`);
    return ok;
  }

  /** Disconnects every client and kills the broker (SIGKILL), waiting (bounded) for it to be gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.allClients()) c.destroy();
    const broker = this.broker;
    if (broker !== undefined && !broker.hasExited()) {
      broker.kill('SIGKILL');
      await broker.exited(5000);
    }
  }

  /** The broker's stderr so far (for failure messages). */
  brokerStderr(): string {
    return this.broker?.stderr() ?? '';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
