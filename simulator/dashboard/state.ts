/**
 * What the dashboard shows, as data: a pure reducer folds the reporter's calls (start, phase, point,
 * event, finish, and the user's Ctrl-C) into a DashboardState, and the view renders that state at a
 * given `now`. No clock is read here: every action carries the wall time it happened at.
 */
import { sumFleets } from '../metrics/counters.js';
import type { FaultCounters, FleetCounters } from '../metrics/types.js';
import type { RunEvent, RunStartInfo } from '../report/reporter.js';
import type { RunResult, TimelinePoint } from '../report/run-result.js';
import type { DeviceModel, Phases } from '../scenario/types.js';

/** Samples kept for the sparklines (one per timeline point): wider than any terminal line needs. */
export const historyLength = 240;

export type Triple = [number, number, number];

export interface FleetTarget {
  name: string;
  model: DeviceModel;
  /** Connections the fleet opens (its `count`). */
  devices: number;
}

/** Cumulative per-QoS figures during the run (from the shards' counters). */
export interface LiveQos {
  published: Triple;
  acknowledged: Triple;
  delivered: Triple;
  duplicated: Triple;
  reordered: Triple;
}

/** A line that scrolls above the live area and stays there: a finished phase or an event. */
export interface LogLine {
  id: number;
  level: RunEvent['level'];
  text: string;
}

export interface DashboardState {
  scenario: { name: string; durationMs: number; drainMs: number; phases: Phases } | null;
  targetDescription: string;
  workers: number;
  devices: number;
  fleets: FleetTarget[];
  /** Wall time (ms) of the start call, of the finish call. */
  startedAt: number | null;
  finishedAt: number | null;
  phase: { name: string; atMs: number } | null;
  latest: TimelinePoint | null;
  /** Sum of the per-point reconnect deltas per fleet (used when no live counters arrive). */
  reconnects: Record<string, number>;
  /** Latest cumulative counters per fleet; null until the first point that carries them. */
  counters: Record<string, FleetCounters> | null;
  history: { published: number[]; delivered: number[]; connected: number[] };
  /** Highest connected gauge seen in the current phase, for its line when it ends. */
  phasePeak: { connected: number; publishedPerSec: number; deliveredPerSec: number };
  log: LogLine[];
  /** Ctrl-C was pressed: the run is stopping (the report is still written). */
  stopping: boolean;
  result: RunResult | null;
  reportDir: string | null;
}

export type DashboardAction =
  | { type: 'start'; at: number; info: RunStartInfo }
  | { type: 'phase'; at: number; name: string; atMs: number }
  | { type: 'point'; at: number; point: TimelinePoint; live?: Readonly<Record<string, FleetCounters>> }
  | { type: 'event'; at: number; event: RunEvent }
  | { type: 'interrupt'; at: number }
  | { type: 'finish'; at: number; result: RunResult; reportDir: string | null };

export function initialDashboardState(): DashboardState {
  return {
    scenario: null,
    targetDescription: '',
    workers: 0,
    devices: 0,
    fleets: [],
    startedAt: null,
    finishedAt: null,
    phase: null,
    latest: null,
    reconnects: {},
    counters: null,
    history: { published: [], delivered: [], connected: [] },
    phasePeak: { connected: 0, publishedPerSec: 0, deliveredPerSec: 0 },
    log: [],
    stopping: false,
    result: null,
    reportDir: null,
  };
}

function pushBounded(values: readonly number[], value: number): number[] {
  const next = values.length >= historyLength ? values.slice(values.length - historyLength + 1) : values.slice();
  next.push(value);
  return next;
}

function appendLog(state: DashboardState, level: LogLine['level'], text: string): LogLine[] {
  const id = state.log.length === 0 ? 0 : state.log[state.log.length - 1]!.id + 1;
  return [...state.log, { id, level, text }];
}

/** Whole seconds of run time, right-aligned like the plain reporter's stamps. */
export function runStamp(atMs: number): string {
  return `[${`${Math.floor(Math.max(0, atMs) / 1000)}s`.padStart(5)}]`;
}

const count = (n: number): string => Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function phaseDoneLine(state: DashboardState, endMs: number): string | null {
  const phase = state.phase;
  if (phase === null) return null;
  const seconds = Math.max(0, endMs - phase.atMs) / 1000;
  const peak = state.phasePeak;
  return (
    `${runStamp(endMs)} phase ${phase.name} done after ${seconds.toFixed(1)} s: peak connected ${count(peak.connected)}/${count(state.devices)}, ` +
    `out ${count(peak.publishedPerSec)}/s, in ${count(peak.deliveredPerSec)}/s`
  );
}

export function reduceDashboard(state: DashboardState, action: DashboardAction): DashboardState {
  switch (action.type) {
    case 'start': {
      const s = action.info.scenario;
      return {
        ...state,
        scenario: { name: s.name, durationMs: s.durationMs, drainMs: s.drainMs, phases: s.phases },
        targetDescription: action.info.targetDescription,
        workers: action.info.workers,
        devices: action.info.devices,
        fleets: s.fleets.map((f) => ({ name: f.name, model: f.model, devices: f.count })),
        startedAt: action.at,
      };
    }
    case 'phase': {
      const done = phaseDoneLine(state, action.atMs);
      const withDone = done === null ? state : { ...state, log: appendLog(state, 'info', done) };
      return {
        ...withDone,
        phase: { name: action.name, atMs: action.atMs },
        phasePeak: { connected: 0, publishedPerSec: 0, deliveredPerSec: 0 },
      };
    }
    case 'point': {
      const p = action.point;
      const reconnects = { ...state.reconnects };
      for (const [name, f] of Object.entries(p.fleets)) reconnects[name] = (reconnects[name] ?? 0) + f.reconnects;
      const counters = action.live === undefined ? state.counters : { ...action.live };
      const peak = state.phasePeak;
      return {
        ...state,
        latest: p,
        reconnects,
        counters,
        history: {
          published: pushBounded(state.history.published, p.publishedPerSec),
          delivered: pushBounded(state.history.delivered, p.deliveredPerSec),
          connected: pushBounded(state.history.connected, p.connected),
        },
        phasePeak: {
          connected: Math.max(peak.connected, p.connected),
          publishedPerSec: Math.max(peak.publishedPerSec, p.publishedPerSec),
          deliveredPerSec: Math.max(peak.deliveredPerSec, p.deliveredPerSec),
        },
      };
    }
    case 'event': {
      const e = action.event;
      const prefix = e.level === 'info' ? '' : `${e.level}: `;
      return { ...state, log: appendLog(state, e.level, `${runStamp(e.atMs)} ${prefix}${e.message}`) };
    }
    case 'interrupt':
      return state.stopping ? state : { ...state, stopping: true, log: appendLog(state, 'warn', 'stopping the run; the report is still written (Ctrl-C again quits at once)') };
    case 'finish': {
      const r = action.result;
      const timelineEnd = r.timelineStartedAt === undefined ? NaN : Date.parse(r.finishedAt) - Date.parse(r.timelineStartedAt);
      const endMs = Number.isFinite(timelineEnd) ? Math.max(timelineEnd, state.latest?.atMs ?? 0) : (state.latest?.atMs ?? 0);
      const done = phaseDoneLine(state, endMs);
      return {
        ...state,
        log: done === null ? state.log : appendLog(state, 'info', done),
        counters: { ...action.result.fleets },
        finishedAt: action.at,
        result: action.result,
        reportDir: action.reportDir,
      };
    }
  }
}

// ---------------------------------------------------------------- derived figures for the view

/** Per-QoS totals over every fleet, from the latest counters; null before any arrived. */
export function liveQos(state: DashboardState): LiveQos | null {
  if (state.counters === null) return null;
  const t = sumFleets(state.counters);
  return {
    published: [...t.published],
    acknowledged: [...t.acknowledged],
    delivered: [...t.delivered],
    duplicated: [...t.duplicates],
    reordered: [...t.reordered],
  };
}

/** Fault counters over every fleet; null when no fleet has a network (all zero or absent). */
export function faultTotals(state: DashboardState): FaultCounters | null {
  if (state.counters === null) return null;
  const fleets = Object.values(state.counters).filter((c) => c.faults !== undefined);
  if (fleets.length === 0) return null;
  const out: FaultCounters = { disconnects: 0, resets: 0, halfOpen: 0, slowCloses: 0, refused: 0, stalls: 0 };
  for (const c of fleets) for (const k of Object.keys(out) as Array<keyof FaultCounters>) out[k] += c.faults![k];
  return Object.values(out).some((n) => n > 0) ? out : null;
}

/** Cumulative reconnects of a fleet: the live counter when known, else the sum of the points' deltas. */
export function fleetReconnects(state: DashboardState, fleet: string): number {
  return state.counters?.[fleet]?.reconnects ?? state.reconnects[fleet] ?? 0;
}

/** Wall time the run has taken so far (frozen at finish), ms. */
export function elapsedMs(state: DashboardState, now: number): number {
  if (state.startedAt === null) return 0;
  return Math.max(0, (state.finishedAt ?? now) - state.startedAt);
}
