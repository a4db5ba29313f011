/**
 * The robustness campaign engine: many TCP connections to a broker, each sending one generated
 * stream (a valid CONNECT, a mutated one or none, then valid and mutated packets, in random
 * chunkings), bounded parallelism, a seeded generator for replay. For every connection it records
 * what the broker did — closed, CONNACK or DISCONNECT reason code, still open after the stream — and
 * checks it against what the stream's construction decides (see plan.ts and mutations.ts), plus the
 * invariants every answer must satisfy (decodable, CONNACK first and once, only packet types a server
 * may send, nothing after a refusing CONNACK or a DISCONNECT, and the close that follows them).
 *
 * Used by test/integration/broker/robustness.test.ts (in-process broker) and bench/robustness/main.ts
 * (broker child process). Every wait is bounded by `waitMs`; a connection never lives longer than
 * `connectionTimeoutMs`; the campaign stops opening connections after `deadlineMs`.
 */
import net from 'node:net';
import type { ConnackPacket, DisconnectPacket, Packet } from '../../protocol/packets.js';
import { PacketParser } from '../../protocol/parser.js';
import { Planner, type ConnectionPlan, type Expectation } from './plan.js';
import { hexPreview } from './wire.js';

export interface CampaignOptions {
  host?: string;
  port: number;
  /** Master seed: connection i is generated from (seed, i) alone, so any connection can be replayed. */
  seed: number;
  /** Stop opening connections once this many mutated or malformed packets have been sent. */
  mutatedPackets: number;
  /** Index of the first connection (default 0). */
  firstIndex?: number;
  /** Connections open at once (default 64). */
  concurrency?: number;
  /** Most packets after CONNECT in one connection (default 40). */
  maxItems?: number;
  /** The broker's maximum packet size (default 1 MiB, the broker's default). */
  maxPacketSize?: number;
  /** The broker's Topic Alias Maximum (default 64, the broker's default). */
  topicAliasMaximum?: number;
  /** Bound of every wait for the broker: CONNECT, CONNACK, close, PINGRESP (default 10 s). */
  waitMs?: number;
  /** Hard bound on one connection's life (default 60 s). */
  connectionTimeoutMs?: number;
  /** Stop opening connections after this long (default: no deadline). */
  deadlineMs?: number;
  /** Violations kept with details (all are counted; default 50). */
  maxViolations?: number;
  onProgress?: (progress: CampaignProgress) => void;
  /** Connections between onProgress calls (default 2000). */
  progressEvery?: number;
}

export interface CampaignProgress {
  connections: number;
  packets: number;
  mutatedPackets: number;
  violations: number;
  elapsedMs: number;
}

export type OutcomeKind =
  /** The broker sent a CONNACK with a non-zero code and closed. */
  | 'refused'
  /** The broker sent DISCONNECT (v5) and closed. */
  | 'disconnected'
  /** The broker closed after answering something (CONNACK 0, acks), without DISCONNECT. */
  | 'closed'
  /** The broker closed without sending a single byte. */
  | 'closed-silent'
  /** Still open after the stream and answered the PINGREQ probe; closed by the client. */
  | 'open'
  /** Still open after the stream, not probed (it ended inside a frame or without an accepted CONNECT); closed by the client. */
  | 'open-unprobed'
  /** A bounded wait for the broker (close, CONNACK or PINGRESP) ran out; closed by the client. */
  | 'unresponsive'
  | 'connect-failed';

export interface Violation {
  /** Replay with seed + index (runConnectionByIndex). */
  index: number;
  message: string;
  version: number;
  expectation: string;
  frames: string[];
  stream: string;
  received: string[];
}

export interface CampaignResult {
  seed: number;
  connections: number;
  /** Packets handed to the socket (valid and mutated), the PINGREQ probes excluded. */
  packets: number;
  mutatedPackets: number;
  validPackets: number;
  probes: number;
  bytesSent: number;
  bytesReceived: number;
  outcomes: Record<OutcomeKind, number>;
  /** CONNACK codes received: 'v5:0x82', 'v3.1.1:1'. */
  connackCodes: Record<string, number>;
  /** DISCONNECT reason codes received (MQTT 5). */
  disconnectCodes: Record<string, number>;
  /** Mutated packets sent, by mutation. */
  mutations: Record<string, number>;
  /** Connections by what their construction decided (accept/open, accept/fatal, refuse, silent, none...). */
  expectations: Record<string, number>;
  violationCount: number;
  violations: Violation[];
  durationMs: number;
  stoppedByDeadline: boolean;
}

interface Observation {
  connectFailed?: string;
  packets: Packet[];
  parseError?: string;
  bytesReceived: number;
  closedByBroker: boolean;
  closeWaitTimedOut: boolean;
  connackWaitTimedOut: boolean;
  probed: boolean;
  probeAnswered: boolean;
  probeTimedOut: boolean;
  framesSent: number;
  mutatedSent: number;
  bytesSent: number;
  mutationLabels: string[];
}

export interface ConnectionReport {
  plan: ConnectionPlan;
  observation: Observation;
  outcome: OutcomeKind;
  violations: string[];
}

const FORBIDDEN_FROM_SERVER = new Set(['connect', 'subscribe', 'unsubscribe', 'pingreq', 'auth']);
const hex2 = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** Resolves true once `cond()` holds (re-checked on every wake), false after `ms`. */
class Waiter {
  private pending: (() => void) | undefined;
  wake(): void {
    const p = this.pending;
    this.pending = undefined;
    p?.();
  }
  async until(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return true;
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.pending = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return true;
  }
}

interface RunSettings {
  host: string;
  port: number;
  waitMs: number;
  connectionTimeoutMs: number;
}

/** Runs one planned connection to completion (bounded) and checks what the broker did. */
export async function runConnection(plan: ConnectionPlan, settings: RunSettings): Promise<ConnectionReport> {
  const o: Observation = {
    packets: [], bytesReceived: 0, closedByBroker: false, closeWaitTimedOut: false, connackWaitTimedOut: false,
    probed: false, probeAnswered: false, probeTimedOut: false, framesSent: 0, mutatedSent: 0, bytesSent: 0, mutationLabels: [],
  };
  const waiter = new Waiter();
  const parser = new PacketParser({ protocolVersion: plan.responseVersion });
  let connected = false;
  let closed = false;
  let destroyedByUs = false;
  let pingresps = 0;
  let connectError: string | undefined;
  const socket = net.connect({ host: settings.host, port: settings.port, noDelay: true });
  socket.on('connect', () => {
    connected = true;
    waiter.wake();
  });
  socket.on('data', (chunk: Buffer) => {
    o.bytesReceived += chunk.length;
    if (o.parseError !== undefined) return;
    try {
      for (const p of parser.push(chunk)) {
        o.packets.push(p);
        if (p.type === 'pingresp') pingresps++;
      }
    } catch (err) {
      o.parseError = `${(err as Error).message} (after ${o.packets.length} packets)`;
    }
    waiter.wake();
  });
  const brokerClosed = (): void => {
    if (!destroyedByUs) o.closedByBroker = true;
  };
  socket.on('end', () => {
    brokerClosed();
    waiter.wake();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (!connected) connectError = err.code ?? err.message;
  });
  const closedPromise = new Promise<void>((resolve) => {
    socket.on('close', () => {
      brokerClosed();
      closed = true;
      waiter.wake();
      resolve();
    });
  });
  // The whole connection is bounded: whatever happens, the socket is destroyed by then.
  const lifeTimer = setTimeout(() => {
    destroyedByUs = true;
    socket.destroy();
  }, settings.connectionTimeoutMs);

  try {
    await waiter.until(() => connected || closed, settings.waitMs);
    if (!connected) {
      o.connectFailed = connectError ?? (closed ? 'closed before connect' : `no connection within ${settings.waitMs} ms`);
    } else {
      // Write the chunks in order; frames count as sent once their last byte was handed to the socket.
      let sent = 0;
      let nextFrame = 0;
      for (const c of plan.chunks) {
        if (closed || o.closedByBroker) break;
        const ok = await new Promise<boolean>((resolve) => {
          socket.write(c, (err) => resolve(err === undefined || err === null));
          void closedPromise.then(() => resolve(false));
        });
        if (!ok) break;
        sent += c.length;
        o.bytesSent += c.length;
        while (nextFrame < plan.frames.length && plan.frameEnds[nextFrame]! <= sent) {
          const f = plan.frames[nextFrame++]!;
          o.framesSent++;
          if (f.mutated) {
            o.mutatedSent++;
            o.mutationLabels.push(f.label);
          }
        }
      }
      await settle(plan, o, socket, waiter, settings, () => closed || o.closedByBroker, () => pingresps);
    }
  } finally {
    clearTimeout(lifeTimer);
    if (!closed) {
      destroyedByUs = true;
      socket.destroy();
      await closedPromise;
    }
  }
  const violations = verify(plan, o);
  return { plan, observation: o, outcome: outcomeOf(o), violations };
}

/** After the stream: wait (bounded) for what the broker must do, or probe whether it is still serving. */
async function settle(
  plan: ConnectionPlan, o: Observation, socket: net.Socket, waiter: Waiter, settings: RunSettings,
  isClosed: () => boolean, pingresps: () => number,
): Promise<void> {
  const exp = plan.expectation;
  if (exp.kind === 'accept') {
    // A valid CONNECT is always answered first: wait for the CONNACK (or a close).
    const got = await waiter.until(() => isClosed() || o.packets.length > 0 || o.parseError !== undefined, settings.waitMs);
    if (!got) o.connackWaitTimedOut = true;
  }
  if (isClosed()) return;
  const refusing = (): boolean => o.packets.some((p) => (p.type === 'connack' && p.reasonCode !== 0) || p.type === 'disconnect');
  const mustClose =
    (exp.kind === 'silent' && exp.mustClose) ||
    exp.kind === 'refuse' ||
    (exp.kind === 'accept' && (exp.then === 'terminal' || typeof exp.then === 'object')) ||
    refusing();
  if (mustClose) {
    if (!(await waiter.until(isClosed, settings.waitMs))) o.closeWaitTimedOut = true;
    return;
  }
  const accepted = o.packets[0]?.type === 'connack' && (o.packets[0] as ConnackPacket).reasonCode === 0;
  const hasDisconnect = plan.frames.some((f) => f.bytes.length === 2 && f.bytes[0] === 0xe0);
  if (plan.scan.end === 'boundary' && accepted && !hasDisconnect && o.framesSent === plan.frames.length) {
    // Every frame is complete, so a broker still reading answers one more PINGREQ after the stream's own.
    o.probed = true;
    socket.write(Buffer.from([0xc0, 0x00]));
    const expected = plan.scan.pingreqs + 1;
    const answered = await waiter.until(() => isClosed() || pingresps() >= expected || o.parseError !== undefined, settings.waitMs);
    if (!answered) o.probeTimedOut = true;
    else if (pingresps() >= expected) o.probeAnswered = true;
  }
}

function outcomeOf(o: Observation): OutcomeKind {
  if (o.connectFailed !== undefined) return 'connect-failed';
  const connack = o.packets.find((p): p is ConnackPacket => p.type === 'connack');
  const disconnect = o.packets.some((p) => p.type === 'disconnect');
  if (o.closedByBroker) {
    if (connack !== undefined && connack.reasonCode !== 0) return 'refused';
    if (disconnect) return 'disconnected';
    return o.bytesReceived === 0 ? 'closed-silent' : 'closed';
  }
  if (o.probeAnswered) return 'open';
  if (o.closeWaitTimedOut || o.probeTimedOut || o.connackWaitTimedOut) return 'unresponsive';
  return 'open-unprobed';
}

export function describeExpectation(e: Expectation): string {
  switch (e.kind) {
    case 'none': return 'none';
    case 'silent': return e.mustClose ? 'silent/close' : 'silent';
    case 'refuse': return `refuse (${e.fatal.rule})`;
    case 'accept': return `accept/${typeof e.then === 'object' ? `fatal (${e.then.rule})` : e.then}`;
  }
}

function expectationKey(e: Expectation): string {
  if (e.kind === 'accept') return `accept/${typeof e.then === 'object' ? 'fatal' : e.then}`;
  if (e.kind === 'silent') return e.mustClose ? 'silent/close' : 'silent';
  return e.kind;
}

/** The checks: invariants for every connection, then what the plan's construction decides. */
export function verify(plan: ConnectionPlan, o: Observation): string[] {
  if (o.connectFailed !== undefined) return [`TCP connect failed: ${o.connectFailed}`];
  const v: string[] = [];
  const v5 = plan.responseVersion === 5;
  if (o.parseError !== undefined) v.push(`the broker sent bytes that are not a valid ${v5 ? 'MQTT 5' : 'MQTT 3.1.1'} packet: ${o.parseError}`);
  let connack: ConnackPacket | undefined;
  let disconnect: DisconnectPacket | undefined;
  let ended: string | undefined;
  o.packets.forEach((p, i) => {
    if (ended !== undefined) v.push(`the broker sent ${p.type.toUpperCase()} after ${ended} [MQTT-3.14.4-1]`);
    if (i === 0 && p.type !== 'connack') v.push(`the first packet from the broker is ${p.type.toUpperCase()}, not CONNACK [MQTT-3.2.0-1]`);
    if (p.type === 'connack') {
      if (connack !== undefined) v.push('the broker sent a second CONNACK [MQTT-3.2.0-2]');
      connack = p;
      if (p.reasonCode !== 0) ended = `a refusing CONNACK (${hex2(p.reasonCode)})`;
    }
    if (p.type === 'disconnect') {
      disconnect = p;
      ended = `DISCONNECT (${hex2(p.reasonCode ?? 0)})`;
    }
    if (FORBIDDEN_FROM_SERVER.has(p.type) || (p.type === 'disconnect' && !v5)) v.push(`the broker sent ${p.type.toUpperCase()}, a packet a ${v5 ? 'v5' : '3.1.1'} server never sends`);
  });
  if (connack !== undefined && connack.reasonCode !== 0 && connack.sessionPresent) {
    v.push('a refusing CONNACK has Session Present set [MQTT-3.2.2-4]/[MQTT-3.2.2-6]');
  }
  if (ended !== undefined && o.closeWaitTimedOut) v.push(`the broker did not close the connection after ${ended} [MQTT-3.2.2-7]/[MQTT-3.14.4-2]`);
  // Every probed stream ends on a frame boundary: a broker still reading it answers the PINGREQ [MQTT-3.12.4-1].
  if (o.probeTimedOut) v.push(`the broker neither answered the PINGREQ after the stream nor closed the connection within the wait`);

  const e = plan.expectation;
  switch (e.kind) {
    case 'none':
      break;
    case 'silent':
      if (o.bytesReceived > 0) v.push(`the broker answered a connection whose first packet is not a CONNECT (${o.bytesReceived} bytes) [MQTT-3.1.0-1]`);
      if (e.mustClose && !o.closedByBroker) v.push('the broker did not close a connection whose first packet is not a CONNECT [MQTT-3.1.0-1]');
      break;
    case 'refuse': {
      const f = e.fatal;
      if (connack !== undefined && connack.reasonCode === 0) v.push(`the broker accepted (CONNACK 0x00) a CONNECT it must refuse: ${f.rule}`);
      else if (connack !== undefined) {
        const allowed = v5 ? f.codes : f.v4Codes;
        if (!allowed.includes(connack.reasonCode)) v.push(`CONNACK ${hex2(connack.reasonCode)} for ${f.rule}; expected ${allowed.length === 0 ? 'no CONNACK (just a close)' : allowed.map(hex2).join(' or ')} or a close`);
      } else if (f.mustAnswer && o.closedByBroker) v.push(`no CONNACK before the close for ${f.rule}; expected ${(v5 ? f.codes : f.v4Codes).map(hex2).join(' or ')}`);
      if (!o.closedByBroker) v.push(`the broker did not close the connection after ${f.rule}`);
      break;
    }
    case 'accept': {
      if (connack === undefined) {
        v.push(o.closedByBroker ? 'the broker closed a valid CONNECT without CONNACK' : `no CONNACK for a valid CONNECT within ${o.connackWaitTimedOut ? 'the wait' : 'the connection'}`);
        break;
      }
      if (connack.reasonCode !== 0) {
        v.push(`the broker refused a valid CONNECT with ${hex2(connack.reasonCode)}`);
        break;
      }
      if (e.clean && connack.sessionPresent) v.push('Session Present set for a clean session [MQTT-3.2.2-2]');
      const extra: number[] = [];
      if (e.allowTakeover) extra.push(0x8e);
      if (e.allowReceiveMaximumExceeded) extra.push(0x93);
      const dcode = disconnect?.reasonCode ?? 0;
      if (e.then === 'open') {
        if (o.closedByBroker) {
          const excused = v5 ? disconnect !== undefined && extra.includes(dcode) : e.allowTakeover;
          if (!excused) v.push(`the broker closed a connection that sent only valid packets${disconnect !== undefined ? ` (DISCONNECT ${hex2(dcode)})` : ''}`);
        } else if (!o.probed) {
          v.push('a connection that sent only valid packets was not probed');
        }
      } else if (e.then === 'terminal') {
        if (!o.closedByBroker) v.push('the broker did not close the connection after the client DISCONNECT');
      } else if (typeof e.then === 'object') {
        const f = e.then;
        if (!o.closedByBroker) v.push(`the broker did not close the connection after ${f.rule}`);
        if (disconnect !== undefined && v5 && !f.codes.includes(dcode) && !extra.includes(dcode)) {
          v.push(`DISCONNECT ${hex2(dcode)} for ${f.rule}; expected ${f.codes.map(hex2).join(' or ')} or a close`);
        }
      }
      break;
    }
  }
  return v;
}

function violationOf(report: ConnectionReport, message: string): Violation {
  const { plan, observation } = report;
  return {
    index: plan.index,
    message,
    version: plan.version,
    expectation: describeExpectation(plan.expectation),
    frames: plan.frames.map((f) => f.label),
    stream: hexPreview(plan.stream, 600),
    received: observation.packets.slice(0, 12).map((p) => {
      if (p.type === 'connack') return `connack ${hex2(p.reasonCode)}${p.sessionPresent ? ' sp' : ''}`;
      if (p.type === 'disconnect') return `disconnect ${hex2(p.reasonCode ?? 0)}`;
      return p.type;
    }),
  };
}

function emptyOutcomes(): Record<OutcomeKind, number> {
  return { refused: 0, disconnected: 0, closed: 0, 'closed-silent': 0, open: 0, 'open-unprobed': 0, unresponsive: 0, 'connect-failed': 0 };
}

const bump = (r: Record<string, number>, k: string, n = 1): void => {
  r[k] = (r[k] ?? 0) + n;
};

function settingsOf(options: CampaignOptions): RunSettings {
  return {
    host: options.host ?? '127.0.0.1',
    port: options.port,
    waitMs: options.waitMs ?? 10_000,
    connectionTimeoutMs: options.connectionTimeoutMs ?? 60_000,
  };
}

function plannerOf(options: CampaignOptions): Planner {
  return new Planner({
    seed: options.seed,
    maxPacketSize: options.maxPacketSize ?? 1024 * 1024,
    topicAliasMaximum: options.topicAliasMaximum ?? 64,
    maxItems: options.maxItems ?? 40,
  });
}

/** Replays one connection of a campaign (same seed and options) and returns its report. */
export function runConnectionByIndex(options: CampaignOptions, index: number): Promise<ConnectionReport> {
  return runConnection(plannerOf(options).plan(index), settingsOf(options));
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const settings = settingsOf(options);
  const planner = plannerOf(options);
  const concurrency = options.concurrency ?? 64;
  const maxViolations = options.maxViolations ?? 50;
  const progressEvery = options.progressEvery ?? 2000;
  const started = Date.now();
  const result: CampaignResult = {
    seed: options.seed, connections: 0, packets: 0, mutatedPackets: 0, validPackets: 0, probes: 0, bytesSent: 0, bytesReceived: 0,
    outcomes: emptyOutcomes(), connackCodes: {}, disconnectCodes: {}, mutations: {}, expectations: {},
    violationCount: 0, violations: [], durationMs: 0, stoppedByDeadline: false,
  };
  let next = options.firstIndex ?? 0;
  const done = (): boolean => {
    if (result.mutatedPackets >= options.mutatedPackets) return true;
    if (options.deadlineMs !== undefined && Date.now() - started >= options.deadlineMs) {
      result.stoppedByDeadline = true;
      return true;
    }
    return false;
  };
  const record = (report: ConnectionReport): void => {
    const o = report.observation;
    result.connections++;
    result.packets += o.framesSent;
    result.mutatedPackets += o.mutatedSent;
    result.validPackets += o.framesSent - o.mutatedSent;
    if (o.probed) result.probes++;
    result.bytesSent += o.bytesSent;
    result.bytesReceived += o.bytesReceived;
    result.outcomes[report.outcome]++;
    for (const label of o.mutationLabels) bump(result.mutations, label);
    bump(result.expectations, expectationKey(report.plan.expectation));
    for (const p of o.packets) {
      if (p.type === 'connack') bump(result.connackCodes, `${report.plan.responseVersion === 5 ? 'v5' : 'v3.1.1'}:${hex2(p.reasonCode)}`);
      else if (p.type === 'disconnect') bump(result.disconnectCodes, hex2(p.reasonCode ?? 0));
    }
    for (const message of report.violations) {
      result.violationCount++;
      if (result.violations.length < maxViolations) result.violations.push(violationOf(report, message));
    }
    if (options.onProgress !== undefined && result.connections % progressEvery === 0) {
      options.onProgress({
        connections: result.connections, packets: result.packets, mutatedPackets: result.mutatedPackets,
        violations: result.violationCount, elapsedMs: Date.now() - started,
      });
    }
  };
  const worker = async (): Promise<void> => {
    while (!done()) {
      const index = next++;
      let report: ConnectionReport;
      try {
        report = await runConnection(planner.plan(index), settings);
      } catch (err) {
        // A failure of the campaign itself (generator, encoder): reported, never silently skipped.
        result.violationCount++;
        if (result.violations.length < maxViolations) {
          result.violations.push({ index, message: `campaign error: ${(err as Error).stack ?? String(err)}`, version: 0, expectation: '', frames: [], stream: '', received: [] });
        }
        continue;
      }
      record(report);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  result.durationMs = Date.now() - started;
  return result;
}
