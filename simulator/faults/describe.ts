/**
 * Pure printers of network profiles: profile in, text out (the `mqtt-sim profiles` table, `validate`).
 */
import { formatDuration } from '../scenario/units.js';
import type { DirectionProfile, LatencyDist, LossModel, NetworkProfile } from './profile.js';

function ms(value: number): string {
  return value === 0 ? '0ms' : value < 1 ? `${value}ms` : formatDuration(value);
}

function percent(p: number): string {
  return `${Number((p * 100).toPrecision(3))}%`;
}

export function describeLatency(l: LatencyDist): string {
  switch (l.dist) {
    case 'fixed':
      return ms(l.ms);
    case 'uniform':
      return `${ms(l.min)}..${ms(l.max)}`;
    case 'normal':
      return `normal ${ms(l.mean)} ±${ms(l.stddev)}`;
    case 'pareto':
      return `pareto ${ms(l.min)} α${l.alpha} ≤${ms(l.max)}`;
  }
}

export function describeBandwidth(bytesPerSec: number): string {
  if (bytesPerSec <= 0) return 'unlimited';
  const bits = bytesPerSec * 8;
  if (bits >= 1e9) return `${Number((bits / 1e9).toPrecision(3))} Gbit/s`;
  if (bits >= 1e6) return `${Number((bits / 1e6).toPrecision(3))} Mbit/s`;
  if (bits >= 1e3) return `${Number((bits / 1e3).toPrecision(3))} kbit/s`;
  return `${bits} bit/s`;
}

export function describeLoss(l: LossModel): string {
  switch (l.model) {
    case 'none':
      return 'none';
    case 'random':
      return `${percent(l.p)} stall ${ms(l.stallMs)}`;
    case 'gilbert-elliott':
      return `bursts G→B ${percent(l.pGoodToBad)} B→G ${percent(l.pBadToGood)}, loss ${percent(l.lossGood)}/${percent(l.lossBad)} stall ${ms(l.stallMs)}`;
  }
}

export function describeDisconnects(p: NetworkProfile): string {
  if (p.disconnects === null) return 'none';
  const d = p.disconnects;
  const w = p.failure;
  const down = d.downtimeMs.min === d.downtimeMs.max ? ms(d.downtimeMs.min) : `${ms(d.downtimeMs.min)}..${ms(d.downtimeMs.max)}`;
  return `mtbf ${formatDuration(d.mtbfMs)}, down ${down} (reset ${w.reset}, halfOpen ${w.halfOpen}, slowClose ${w.slowClose})`;
}

function directionCells(d: DirectionProfile): string[] {
  return [describeLatency(d.latency), ms(d.jitterMs), describeBandwidth(d.bandwidth), describeLoss(d.loss), d.maxSegment > 0 ? `${d.maxSegment} B` : '-'];
}

/** One summary line of a profile (for `validate` and logs). */
export function describeProfile(p: NetworkProfile): string {
  const [lu, ju, bu, xu, su] = directionCells(p.up);
  const [ld, , bd] = directionCells(p.down);
  return `${p.preset}: latency ${lu === ld ? lu : `up ${lu}, down ${ld}`}, jitter ${ju}, bandwidth up ${bu} / down ${bd}, loss ${xu}, segment ${su}, disconnects ${describeDisconnects(p)}`;
}

/** The table `mqtt-sim profiles` prints: two rows per profile (up, down); disconnects on the first. */
export function profilesTable(profiles: Readonly<Record<string, NetworkProfile>>): string {
  const header = ['profile', 'dir', 'latency (one way)', 'jitter', 'bandwidth', 'loss (TCP stall)', 'segment', 'disconnects'];
  const rows: string[][] = [header];
  for (const [name, p] of Object.entries(profiles)) {
    rows.push([name, 'up', ...directionCells(p.up), describeDisconnects(p)]);
    rows.push(['', 'down', ...directionCells(p.down), '']);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
