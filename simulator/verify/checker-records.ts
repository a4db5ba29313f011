/**
 * What the delivery checker needs beyond the seq ledgers, recorded cheaply in the shard and merged like
 * them (the optional `checker` section of SerializedLedgers):
 *
 * - A sparse **time index** per stream: checkpoints (seq, lo, hi) at the stream's first sequence, every
 *   TIME_INDEX_STRIDE-th one and its last. `lo` is the scheduled send time (the broker cannot have seen
 *   the message earlier); `hi` is the latest time the broker can have routed it: the acknowledgement
 *   (QoS 1/2; -1 while unacknowledged) or the moment it was handed to the socket (QoS 0). Sequences
 *   between two checkpoints are bracketed by them: schedules only grow with seq, and one connection
 *   carries a stream's packets in order.
 * - **Session events** per subscribing device (CONNACK with session present or not, SUBACK with the
 *   granted QoS, connection lost, and `end` when the run finished gracefully): a handful per device, from
 *   which the checker derives when the device's subscriptions were in force at the broker, and whether
 *   the broker kept a persistent session it owed the device.
 * - **Retained replays**: each stamped message that arrives with the RETAIN flag (the broker replaying
 *   its retained state for a new subscription) is recorded as (stream, seq) on the device's latest
 *   SUBACK event: a few per subscribe. Retained streams also get a checkpoint in the time index at
 *   least every RETAINED_CHECKPOINT_MS, so the checker knows which value was the last one acknowledged
 *   before a subscription to within about a second.
 *
 * Times are epoch milliseconds on the machine's clock (preciseNowMs), floored for lo and ceiled for hi
 * so rounding never narrows a bracket.
 */

/** A checkpoint every this many sequences (plus the first and the last of each stream). */
export const TIME_INDEX_STRIDE = 32;
/** A retained stream also gets a checkpoint when this long has passed since its previous one. */
export const RETAINED_CHECKPOINT_MS = 1000;
/** Retained replays kept per SUBACK (stream, seq pairs); beyond it the event is marked truncated. */
export const MAX_RETAINED_REPLAYS = 10_000;

export type SessionEventKind = 'connected' | 'subscribed' | 'lost' | 'end';

export interface SessionEvent {
  kind: SessionEventKind;
  atMs: number;
  /** connected: the CONNACK's session-present flag. */
  sessionPresent?: boolean;
  /** subscribed: the SUBACK's codes in request order (granted QoS, or >= 0x80 for a refusal). */
  granted?: number[];
  /**
   * lost: when bytes last arrived from the broker before the loss. A link that went dead (partition)
   * may have ended the session at the broker any time after it, so a clean session's presence ends here.
   */
  quietSinceMs?: number;
  /** subscribed: the retained replays that followed this SUBACK, flat [stream, seq, stream, seq, ...] in arrival order. */
  retained?: number[];
  /** subscribed: more replays arrived than MAX_RETAINED_REPLAYS (the missing ones cannot be judged). */
  retainedTruncated?: boolean;
}

/** The `checker` section of SerializedLedgers. */
export interface CheckerRecords {
  version: 1;
  /** Per stream, flat [seq, lo, hi, seq, lo, hi, ...] ascending by seq; hi is -1 when unknown. */
  times: Array<{ stream: number; points: number[] }>;
  /** Per subscribing device (global device number), events in time order. */
  sessions: Array<{ device: number; events: SessionEvent[] }>;
}

interface TimeEntry {
  points: number[];
  lastSeq: number;
  lastLo: number;
  lastHi: number;
}

export class CheckerRecorder {
  private readonly times = new Map<number, TimeEntry>();
  private readonly sessions = new Map<number, SessionEvent[]>();
  /** Per device: its latest SUBACK event, which retained replays attach to. */
  private readonly lastSubscribed = new Map<number, SessionEvent>();
  private lastId = -1;
  private last: TimeEntry | undefined;

  private entry(stream: number): TimeEntry | undefined {
    if (stream === this.lastId) return this.last;
    const e = this.times.get(stream);
    if (e !== undefined) {
      this.lastId = stream;
      this.last = e;
    }
    return e;
  }

  /** A message was handed to the client: `routedByMs` is known for QoS 0 (the write), -1 for QoS 1/2 (wait for the ack). */
  published(stream: number, seq: number, scheduledMs: number, routedByMs: number, retained = false): void {
    let e = this.entry(stream);
    if (e === undefined) {
      e = { points: [], lastSeq: -1, lastLo: 0, lastHi: -1 };
      this.times.set(stream, e);
      this.lastId = stream;
      this.last = e;
    }
    const lo = Math.floor(scheduledMs);
    const hi = routedByMs < 0 ? -1 : Math.ceil(routedByMs);
    const p = e.points;
    if (p.length === 0 || seq % TIME_INDEX_STRIDE === 0 || (retained && lo - p[p.length - 2]! >= RETAINED_CHECKPOINT_MS)) p.push(seq, lo, hi);
    e.lastSeq = seq;
    e.lastLo = lo;
    e.lastHi = hi;
  }

  /** The broker acknowledged (stream, seq) at `atMs`: it had routed the message by then. */
  acknowledged(stream: number, seq: number, atMs: number): void {
    const e = this.entry(stream);
    if (e === undefined) return;
    const hi = Math.ceil(atMs);
    if (seq === e.lastSeq) e.lastHi = hi;
    const p = e.points;
    // Acks come for recent sequences: the loop nearly always stops at the last checkpoint.
    for (let i = p.length - 3; i >= 0; i -= 3) {
      if (p[i] === seq) {
        if (p[i + 2]! < 0) p[i + 2] = hi;
        break;
      }
      if (p[i]! < seq) break;
    }
  }

  private session(device: number): SessionEvent[] {
    let events = this.sessions.get(device);
    if (events === undefined) {
      events = [];
      this.sessions.set(device, events);
    }
    return events;
  }

  connected(device: number, atMs: number, sessionPresent: boolean): void {
    this.session(device).push({ kind: 'connected', atMs: Math.round(atMs), sessionPresent });
  }

  subscribed(device: number, atMs: number, granted: number[]): void {
    const event: SessionEvent = { kind: 'subscribed', atMs: Math.round(atMs), granted: [...granted] };
    this.session(device).push(event);
    this.lastSubscribed.set(device, event);
  }

  /** A stamped message arrived with the RETAIN flag: a replay of the broker's retained state for the latest SUBACK. */
  retainedReplay(device: number, stream: number, seq: number): void {
    const event = this.lastSubscribed.get(device);
    if (event === undefined) return;
    const list = (event.retained ??= []);
    if (list.length >= 2 * MAX_RETAINED_REPLAYS) event.retainedTruncated = true;
    else list.push(stream, seq);
  }

  lost(device: number, atMs: number, quietSinceMs?: number): void {
    const event: SessionEvent = { kind: 'lost', atMs: Math.round(atMs) };
    if (quietSinceMs !== undefined && quietSinceMs > 0 && quietSinceMs < atMs) event.quietSinceMs = Math.floor(quietSinceMs);
    this.session(device).push(event);
  }

  /** The run finished after draining: subscriptions in force now count as in force to the end. */
  end(device: number, atMs: number): void {
    if (this.sessions.has(device)) this.session(device).push({ kind: 'end', atMs: Math.round(atMs) });
  }

  serialize(): CheckerRecords {
    const times: CheckerRecords['times'] = [];
    for (const id of [...this.times.keys()].sort((a, b) => a - b)) {
      const e = this.times.get(id)!;
      const points = e.points.slice();
      if (points[points.length - 3] !== e.lastSeq) points.push(e.lastSeq, e.lastLo, e.lastHi);
      else points[points.length - 1] = Math.max(points[points.length - 1]!, e.lastHi);
      times.push({ stream: id, points });
    }
    const sessions: CheckerRecords['sessions'] = [];
    for (const device of [...this.sessions.keys()].sort((a, b) => a - b)) {
      sessions.push({ device, events: this.sessions.get(device)!.map(copyEvent) });
    }
    return { version: 1, times, sessions };
  }
}

/**
 * Combines the checker sections of several parts. A stream or a device normally lives in one part;
 * if two parts hold the same one, checkpoints are united by seq (the wider bracket wins) and events are
 * interleaved by time. Parts without the section contribute nothing; undefined when none has it.
 */
export function mergeCheckerRecords(parts: ReadonlyArray<CheckerRecords | undefined>): CheckerRecords | undefined {
  const present = parts.filter((p): p is CheckerRecords => p !== undefined);
  if (present.length === 0) return undefined;
  const times = new Map<number, Map<number, [number, number]>>();
  const sessions = new Map<number, SessionEvent[]>();
  for (const part of present) {
    if (part.version !== 1) throw new Error(`mergeCheckerRecords: unsupported checker records version ${String(part.version)}`);
    for (const t of part.times) {
      let bySeq = times.get(t.stream);
      if (bySeq === undefined) {
        bySeq = new Map();
        times.set(t.stream, bySeq);
      }
      for (let i = 0; i + 2 < t.points.length; i += 3) {
        const seq = t.points[i]!;
        const lo = t.points[i + 1]!;
        const hi = t.points[i + 2]!;
        const old = bySeq.get(seq);
        if (old === undefined) bySeq.set(seq, [lo, hi]);
        else bySeq.set(seq, [Math.min(old[0], lo), Math.max(old[1], hi)]); // -1 (unknown) loses to any time
      }
    }
    for (const s of part.sessions) {
      const events = sessions.get(s.device);
      if (events === undefined) sessions.set(s.device, s.events.map(copyEvent));
      else events.push(...s.events.map(copyEvent));
    }
  }
  const out: CheckerRecords = { version: 1, times: [], sessions: [] };
  for (const stream of [...times.keys()].sort((a, b) => a - b)) {
    const bySeq = times.get(stream)!;
    const points: number[] = [];
    for (const seq of [...bySeq.keys()].sort((a, b) => a - b)) points.push(seq, ...bySeq.get(seq)!);
    out.times.push({ stream, points });
  }
  for (const device of [...sessions.keys()].sort((a, b) => a - b)) {
    // Stable sort: events of one part keep their recorded order at equal times.
    out.sessions.push({ device, events: sessions.get(device)!.sort((a, b) => a.atMs - b.atMs) });
  }
  return out;
}

function copyEvent(e: SessionEvent): SessionEvent {
  const copy: SessionEvent = { ...e };
  if (e.granted !== undefined) copy.granted = [...e.granted];
  if (e.retained !== undefined) copy.retained = [...e.retained];
  return copy;
}
