/**
 * The notable moments of a run on its timeline, for the charts and event tables of the reports: chaos
 * actions as they happened, the delivery checker's violation examples (at the time their message was
 * published) and reconnect spikes (intervals with far more reconnects than usual).
 */
import type { MarkerKind } from './svg-chart.js';
import type { RunResult } from './run-result.js';

export interface ReportEvent {
  /** ms from t=0 of the timeline. */
  atMs: number;
  /** When a lasting event (a partition, a paused broker) was over. */
  endMs?: number;
  kind: MarkerKind;
  label: string;
  detail: string;
}

/** Reconnect spikes shown at most (the largest). */
const MAX_SPIKES = 20;

/** Epoch ms of t=0 (older run.json files lack timelineStartedAt: the run's start is close). */
function timelineEpoch(result: RunResult): number | null {
  const t = Date.parse(result.timelineStartedAt ?? result.startedAt);
  return Number.isFinite(t) ? t : null;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Intervals whose reconnects (every fleet) reach 3× the median interval, and at least 1. */
function reconnectSpikes(result: RunResult): ReportEvent[] {
  const perPoint = result.timeline.map((p) => Object.values(p.fleets).reduce((n, f) => n + f.reconnects, 0));
  const threshold = Math.max(1, 3 * median(perPoint));
  const spikes = result.timeline
    .map((p, i) => ({ p, n: perPoint[i]! }))
    .filter(({ n }) => n >= threshold)
    .sort((a, b) => b.n - a.n || a.p.atMs - b.p.atMs)
    .slice(0, MAX_SPIKES);
  return spikes.map(({ p, n }) => ({
    atMs: p.atMs,
    kind: 'reconnect' as const,
    label: `${n} reconnect${n === 1 ? '' : 's'}`,
    detail: Object.entries(p.fleets).filter(([, f]) => f.reconnects > 0).map(([name, f]) => `${name} ${f.reconnects}`).join(', '),
  }));
}

/** Every event, in time order (ties: chaos, then violations, then spikes). */
export function collectReportEvents(result: RunResult): ReportEvent[] {
  const events: ReportEvent[] = [];
  for (const r of result.chaos) {
    events.push({
      atMs: r.atMs,
      ...(r.endMs !== undefined ? { endMs: r.endMs } : {}),
      kind: 'chaos',
      label: `${r.action}${r.outcome === 'failed' ? ' (failed)' : ''}`,
      detail: r.detail,
    });
  }
  const epoch = timelineEpoch(result);
  for (const e of result.checker?.examples ?? []) {
    if (epoch === null || e.publishedAtBracket === null) continue;
    const to = e.group ?? e.subscriberClientId ?? '?';
    events.push({
      atMs: Math.max(0, e.publishedAtBracket[0] - epoch),
      kind: 'violation',
      label: `${e.kind} qos${e.qos}`,
      detail: `${e.publisherClientId} → ${to} ${e.topic}${e.seq === null ? '' : ` seq ${e.seq}`}: ${e.detail}`,
    });
  }
  events.push(...reconnectSpikes(result));
  const order: Record<MarkerKind, number> = { chaos: 0, violation: 1, reconnect: 2 };
  return events.sort((a, b) => a.atMs - b.atMs || order[a.kind] - order[b.kind]);
}
