/**
 * The YAML syntax of a network (a `networks:` entry of a scenario, or a `--profile-file` of the proxy):
 * a preset name, or a mapping that starts from a preset and overrides it field by field, with units
 * (`40ms`, `20ms..60ms`, `1Mbit/s`, `1%`). Returns the resolved NetworkProfile or every problem with its
 * path below the entry; it never throws for a user mistake. docs/scenarios.md ("Networks") documents it.
 */
import { closestMatch } from '../../common/edit-distance.js';
import { describeValue, parseDuration, parseDurationRange, parsePercentage, type DurationRange } from '../scenario/units.js';
import {
  isPresetName, presetNames, resolveProfile, type DirectionProfile, type DisconnectSpec, type FailureWeights, type LatencyDist,
  type LossModel, type NetworkOverrides, type NetworkProfile,
} from './profile.js';

export interface NetworkSpecIssue {
  /** Path below the entry (empty: the entry itself). */
  path: Array<string | number>;
  message: string;
}

export type NetworkSpecParse = { ok: true; profile: NetworkProfile } | { ok: false; issues: NetworkSpecIssue[] };

type Report = (path: Array<string | number>, message: string) => void;

/** "unknown preset ...; did you mean ...?" */
export function unknownPresetMessage(name: string, extra: readonly string[] = []): string {
  const near = closestMatch(name, [...extra, ...presetNames], Math.max(2, Math.floor(name.length / 3)));
  const all = extra.length > 0 ? `networks declared: ${extra.join(', ')}; presets: ${presetNames.join(', ')}` : `presets: ${presetNames.join(', ')}`;
  return `unknown ${extra.length > 0 ? 'network' : 'preset'} ${JSON.stringify(name)}${near !== undefined ? `; did you mean ${near}?` : ''} (${all})`;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(v: Record<string, unknown>, known: readonly string[], path: Array<string | number>, report: Report): void {
  for (const key of Object.keys(v)) {
    if (known.includes(key)) continue;
    const near = closestMatch(key, known, 2);
    report([...path, key], near !== undefined ? `unknown key; did you mean ${near}?` : `unknown key; expected one of ${known.join(', ')}`);
  }
}

function duration(v: unknown, path: Array<string | number>, report: Report): number | undefined {
  const d = parseDuration(v);
  if (d.ok) return d.value;
  report(path, d.message);
  return undefined;
}

function range(v: unknown, path: Array<string | number>, report: Report): DurationRange | undefined {
  const r = parseDurationRange(v);
  if (r.ok) return r.value;
  report(path, r.message);
  return undefined;
}

function probability(v: unknown, path: Array<string | number>, report: Report): number | undefined {
  const p = parsePercentage(v);
  if (p.ok && p.value >= 0 && p.value <= 1) return p.value;
  report(path, `expected a probability from 0 to 1 (or 0% to 100%), got ${describeValue(v)}`);
  return undefined;
}

function nonNegative(v: unknown, path: Array<string | number>, report: Report, what: string): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  report(path, `expected ${what} of 0 or more, got ${describeValue(v)}`);
  return undefined;
}

const BANDWIDTH = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:(B|kB|KB|MB|GB|bit|kbit|Kbit|Mbit|Gbit)\/s|(bps|kbps|Kbps|Mbps|Gbps))$/;
const bandwidthUnits: Record<string, number> = {
  B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9,
  bit: 1 / 8, kbit: 1e3 / 8, Kbit: 1e3 / 8, Mbit: 1e6 / 8, Gbit: 1e9 / 8,
  bps: 1 / 8, kbps: 1e3 / 8, Kbps: 1e3 / 8, Mbps: 1e6 / 8, Gbps: 1e9 / 8,
};

/** Bytes per second from `0`, `unlimited`, a plain number of bytes/s, `125kB/s`, `1Mbit/s`, `384kbps`. */
export function parseBandwidth(v: unknown): { ok: true; value: number } | { ok: false; message: string } {
  if (v === 'unlimited' || v === 0 || v === '0') return { ok: true, value: 0 };
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return { ok: true, value: v };
  const m = typeof v === 'string' ? BANDWIDTH.exec(v.trim()) : null;
  if (m === null) {
    return { ok: false, message: `expected a bandwidth like 1Mbit/s, 384kbit/s, 125kB/s, a number of bytes per second, or unlimited, got ${describeValue(v)}` };
  }
  const value = Number(m[1]) * bandwidthUnits[(m[2] ?? m[3])!]!;
  return value > 0 ? { ok: true, value } : { ok: false, message: `expected a bandwidth above 0 (or unlimited), got ${describeValue(v)}` };
}

const latencyKeys: Record<LatencyDist['dist'], string[]> = {
  fixed: ['ms'],
  uniform: ['min', 'max'],
  normal: ['mean', 'stddev'],
  pareto: ['min', 'alpha', 'max'],
};
const latencyForms = '40ms, 20ms..60ms, { dist: fixed, ms: 40ms }, { dist: uniform, min: 20ms, max: 60ms }, { dist: normal, mean: 40ms, stddev: 10ms } or { dist: pareto, min: 50ms, alpha: 2, max: 2s }';

function latency(v: unknown, path: Array<string | number>, report: Report): LatencyDist | undefined {
  if (typeof v === 'string' || typeof v === 'number') {
    const r = parseDurationRange(v);
    if (!r.ok) {
      report(path, `expected ${latencyForms}, got ${describeValue(v)}`);
      return undefined;
    }
    return r.value.min === r.value.max ? { dist: 'fixed', ms: r.value.min } : { dist: 'uniform', min: r.value.min, max: r.value.max };
  }
  if (!isMapping(v)) {
    report(path, `expected ${latencyForms}, got ${describeValue(v)}`);
    return undefined;
  }
  const dist = v.dist;
  if (typeof dist !== 'string' || !(dist in latencyKeys)) {
    const near = typeof dist === 'string' ? closestMatch(dist, Object.keys(latencyKeys), 2) : undefined;
    report([...path, 'dist'], `expected fixed, uniform, normal or pareto, got ${describeValue(dist)}${near !== undefined ? `; did you mean ${near}?` : ''}`);
    return undefined;
  }
  const keys = latencyKeys[dist as LatencyDist['dist']];
  unknownKeys(v, ['dist', ...keys], path, report);
  const need = (key: string): number | undefined => {
    if (v[key] === undefined) {
      report([...path, key], `required for dist: ${dist}; expected ${latencyForms}`);
      return undefined;
    }
    return duration(v[key], [...path, key], report);
  };
  switch (dist as LatencyDist['dist']) {
    case 'fixed': {
      const ms = need('ms');
      return ms === undefined ? undefined : { dist: 'fixed', ms };
    }
    case 'uniform': {
      const min = need('min');
      const max = need('max');
      if (min === undefined || max === undefined) return undefined;
      if (min > max) {
        report(path, 'min must not exceed max');
        return undefined;
      }
      return { dist: 'uniform', min, max };
    }
    case 'normal': {
      const mean = need('mean');
      const stddev = need('stddev');
      return mean === undefined || stddev === undefined ? undefined : { dist: 'normal', mean, stddev };
    }
    case 'pareto': {
      const min = need('min');
      const alpha = v.alpha;
      if (typeof alpha !== 'number' || !(alpha > 0)) {
        report([...path, 'alpha'], `expected a shape above 0 (smaller is a heavier tail; 1.5 to 3 is typical), got ${describeValue(alpha)}`);
        return undefined;
      }
      if (min === undefined) return undefined;
      const max = v.max === undefined ? min * 20 : duration(v.max, [...path, 'max'], report);
      if (max === undefined) return undefined;
      if (max < min) {
        report([...path, 'max'], 'the cap must not be below min');
        return undefined;
      }
      return { dist: 'pareto', min, alpha, max };
    }
  }
}

function loss(v: unknown, path: Array<string | number>, report: Report): LossModel | undefined {
  if (v === 'none' || v === 0) return { model: 'none' };
  const forms = 'none, { model: random, p: 1%, stall: 300ms } or { model: gilbert-elliott, pGoodToBad: 1%, pBadToGood: 25%, lossGood: 0, lossBad: 30%, stall: 1s }';
  if (!isMapping(v)) {
    report(path, `expected ${forms}, got ${describeValue(v)}`);
    return undefined;
  }
  const model = v.model;
  const stall = (): number | undefined => (v.stall === undefined ? 300 : duration(v.stall, [...path, 'stall'], report));
  if (model === 'random') {
    unknownKeys(v, ['model', 'p', 'stall'], path, report);
    const p = probability(v.p, [...path, 'p'], report);
    const stallMs = stall();
    return p === undefined || stallMs === undefined ? undefined : { model: 'random', p, stallMs };
  }
  if (model === 'gilbert-elliott') {
    const keys = ['pGoodToBad', 'pBadToGood', 'lossGood', 'lossBad'] as const;
    unknownKeys(v, ['model', ...keys, 'stall'], path, report);
    const values: Partial<Record<(typeof keys)[number], number>> = {};
    for (const key of keys) {
      const given = v[key] ?? (key === 'lossGood' ? 0 : undefined);
      if (given === undefined) report([...path, key], `required for model: gilbert-elliott; expected ${forms}`);
      else values[key] = probability(given, [...path, key], report);
    }
    const stallMs = stall();
    if (keys.some((k) => values[k] === undefined) || stallMs === undefined) return undefined;
    return { model: 'gilbert-elliott', pGoodToBad: values.pGoodToBad!, pBadToGood: values.pBadToGood!, lossGood: values.lossGood!, lossBad: values.lossBad!, stallMs };
  }
  report([...path, 'model'], `expected random or gilbert-elliott, got ${describeValue(model)}; or write loss: none`);
  return undefined;
}

const directionKeys = ['latency', 'jitter', 'bandwidth', 'loss', 'maxSegment'] as const;

function directionFields(v: Record<string, unknown>, path: Array<string | number>, report: Report): Partial<DirectionProfile> {
  const out: Partial<DirectionProfile> = {};
  if (v.latency !== undefined) {
    const l = latency(v.latency, [...path, 'latency'], report);
    if (l !== undefined) out.latency = l;
  }
  if (v.jitter !== undefined) {
    const j = duration(v.jitter, [...path, 'jitter'], report);
    if (j !== undefined) out.jitterMs = j;
  }
  if (v.bandwidth !== undefined) {
    const b = parseBandwidth(v.bandwidth);
    if (b.ok) out.bandwidth = b.value;
    else report([...path, 'bandwidth'], b.message);
  }
  if (v.loss !== undefined) {
    const l = loss(v.loss, [...path, 'loss'], report);
    if (l !== undefined) out.loss = l;
  }
  if (v.maxSegment !== undefined) {
    const m = v.maxSegment;
    if (typeof m === 'number' && Number.isInteger(m) && m >= 0) out.maxSegment = m;
    else report([...path, 'maxSegment'], `expected a whole number of bytes (0: writes are not sliced), got ${describeValue(m)}`);
  }
  return out;
}

function disconnects(v: unknown, path: Array<string | number>, report: Report): DisconnectSpec | null | undefined {
  if (v === 'none' || v === null) return null;
  if (!isMapping(v)) {
    report(path, `expected { mtbf: 2m, downtime: 2s..15s } or none, got ${describeValue(v)}`);
    return undefined;
  }
  unknownKeys(v, ['mtbf', 'downtime'], path, report);
  if (v.mtbf === undefined) report([...path, 'mtbf'], 'required: the mean time between failures, e.g. mtbf: 2m');
  const mtbf = v.mtbf === undefined ? undefined : duration(v.mtbf, [...path, 'mtbf'], report);
  if (mtbf !== undefined && mtbf <= 0) report([...path, 'mtbf'], 'expected a duration above 0, e.g. 2m (or disconnects: none)');
  const downtime = v.downtime === undefined ? { min: 0, max: 0 } : range(v.downtime, [...path, 'downtime'], report);
  if (mtbf === undefined || !(mtbf > 0) || downtime === undefined) return undefined;
  return { mtbfMs: mtbf, downtimeMs: downtime };
}

function failure(v: unknown, path: Array<string | number>, report: Report): Partial<FailureWeights> | undefined {
  if (!isMapping(v)) {
    report(path, `expected weights like { reset: 0.5, halfOpen: 0.3, slowClose: 0.2 }, got ${describeValue(v)}`);
    return undefined;
  }
  const keys = ['reset', 'halfOpen', 'slowClose'] as const;
  unknownKeys(v, keys, path, report);
  const out: Partial<FailureWeights> = {};
  for (const key of keys) {
    if (v[key] === undefined) continue;
    const w = nonNegative(v[key], [...path, key], report, 'a weight');
    if (w !== undefined) out[key] = w;
  }
  return out;
}

const entryKeys = ['preset', ...directionKeys, 'up', 'down', 'disconnects', 'failure', 'slowClose'] as const;

/** Parses one network entry (`cellular-4g`, or `{ preset: cellular-4g, disconnects: {...}, ... }`). */
export function parseNetworkSpec(value: unknown): NetworkSpecParse {
  const issues: NetworkSpecIssue[] = [];
  const report: Report = (path, message) => issues.push({ path, message });
  if (typeof value === 'string') {
    if (isPresetName(value)) return { ok: true, profile: resolveProfile(value) };
    return { ok: false, issues: [{ path: [], message: unknownPresetMessage(value) }] };
  }
  if (!isMapping(value)) {
    return { ok: false, issues: [{ path: [], message: `expected a preset name (${presetNames.join(', ')}) or a mapping like { preset: cellular-4g, disconnects: { mtbf: 2m, downtime: 2s..15s } }, got ${describeValue(value)}` }] };
  }
  unknownKeys(value, entryKeys, [], report);
  const overrides: NetworkOverrides = {};
  if (value.preset !== undefined) {
    if (typeof value.preset === 'string' && isPresetName(value.preset)) overrides.preset = value.preset;
    else report(['preset'], typeof value.preset === 'string' ? unknownPresetMessage(value.preset) : `expected a preset name (${presetNames.join(', ')}), got ${describeValue(value.preset)}`);
  }
  Object.assign(overrides, directionFields(value, [], report));
  for (const side of ['up', 'down'] as const) {
    const v = value[side];
    if (v === undefined) continue;
    if (!isMapping(v)) {
      report([side], `expected a mapping of ${directionKeys.join(', ')}, got ${describeValue(v)}`);
      continue;
    }
    unknownKeys(v, directionKeys, [side], report);
    overrides[side] = directionFields(v, [side], report);
  }
  if (value.disconnects !== undefined) {
    const d = disconnects(value.disconnects, ['disconnects'], report);
    if (d !== undefined) overrides.disconnects = d;
  }
  if (value.failure !== undefined) {
    const f = failure(value.failure, ['failure'], report);
    if (f !== undefined) overrides.failure = f;
  }
  if (value.slowClose !== undefined) {
    const r = range(value.slowClose, ['slowClose'], report);
    if (r !== undefined) overrides.slowCloseMs = r;
  }
  if (issues.length > 0) return { ok: false, issues };
  const profile = resolveProfile(overrides);
  const w = profile.failure;
  if (profile.disconnects !== null && w.reset + w.halfOpen + w.slowClose <= 0) {
    return { ok: false, issues: [{ path: ['failure'], message: 'the weights add up to 0; give at least one of reset, halfOpen, slowClose a weight above 0' }] };
  }
  return { ok: true, profile };
}

/** Like parseNetworkSpec, with the issues as `path: message` lines (for the proxy's --profile-file). */
export function networkSpecProblems(issues: readonly NetworkSpecIssue[], base = ''): string[] {
  return issues.map((i) => {
    const path = i.path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out === '' ? part : `${out}.${part}`), base);
    return path === '' ? i.message : `${path}: ${i.message}`;
  });
}
