/**
 * The YAML scenario format: a zod schema of the document (shapes, unknown keys, units, generator
 * expressions) and the normalization of what it parsed into a `Scenario` (defaults, phases, target,
 * templates and topics, cross-references between fleets). Every problem is reported as
 * `{ path: 'fleets[1].publish.qos', message: 'expected 0, 1 or 2, got 3' }`; nothing here throws for a
 * user mistake. docs/scenarios.md is the reference of the format; keep them in step.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import type { QoS } from '../../protocol/packets.js';
import { parseSharedFilter, topicFilterProblem, topicMatches, topicNameProblem } from '../../protocol/topic.js';
import { AssertionSyntaxError, assertionUnitProblem, closest, metricProblem, parseAssertion } from '../report/assertions.js';
import { builtinPlaceholders, compileTemplate, hasPlaceholders, resolveAttributes, templateProblem, type TemplateVars } from './templates.js';
import type {
  AssertionSpec, AttributeSpec, ChaosAction, CommandSpec, DeviceModel, FleetSpec, GeneratorSpec, PayloadSpec, Phases, PublishSpec, Scenario,
  SubscriptionSpec, TargetSpec, TlsSpec, WillSpec,
} from './types.js';
import { describeValue, formatDuration, parseDuration, parsePercentage, parseRate, type Parsed } from './units.js';
import { isPresetName, resolveProfile, type NetworkProfile } from '../faults/profile.js';
import { parseNetworkSpec, unknownPresetMessage } from '../faults/network-spec.js';

export interface ScenarioIssue {
  /** YAML path like `fleets[1].publish.qos`; empty for the document as a whole. */
  path: string;
  message: string;
}

export interface NormalizeOptions {
  /** Folder that relative file paths (TLS files) resolve against. */
  baseDir: string;
  sourceFile?: string;
  overrides?: { seed?: number; targetUrls?: string[] };
}

export type ScenarioParse = { ok: true; scenario: Scenario } | { ok: false; issues: ScenarioIssue[] };

// ---------------------------------------------------------------------------------------------------
// Defaults (docs/scenarios.md lists them; keep in step)

export const scenarioDefaults = {
  seed: 1,
  drainMs: 5_000,
  protocolVersion: 5 as const,
  connectTimeoutMs: 10_000,
  clientId: '{fleet}-{index}',
  keepaliveSec: 60,
  inflight: 20,
  gatewaySensors: 8,
  reconnect: { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2 },
  replyTopic: '{fleet}/{id}/state',
  /** Ramp-up computed from connect rates never takes more than this share of the duration. */
  maxAutoRampUpShare: 0.25,
  payload: { kind: 'json', fields: { value: { kind: 'uniform', min: 0, max: 100 } } } satisfies PayloadSpec,
};

/** Above this many devices in total, client-id uniqueness is not checked by rendering every id. */
const MAX_RENDERED_CLIENT_IDS = 500_000;
const MAX_EXPIRY_SEC = 0xffff_ffff;
const MAX_KEEPALIVE_SEC = 0xffff;

// ---------------------------------------------------------------------------------------------------
// Leaves: a value parsed by a function that reports problems (with an optional sub-path).

type Report = (message: string, path?: Array<string | number>) => void;
const INVALID: unique symbol = Symbol('invalid');
type Check<T> = (value: unknown, report: Report) => T | typeof INVALID;

function leaf<T>(check: Check<T>) {
  return z.unknown().transform((value, ctx): T => {
    const result = check(value, (message, path) => ctx.addIssue({ code: 'custom', message, input: value, ...(path !== undefined ? { path } : {}) }));
    return result === INVALID ? z.NEVER : result;
  });
}

/** A leaf from a units.ts-style parser. */
function parsed<T>(parse: (value: unknown) => Parsed<T>): Check<T> {
  return (value, report) => {
    const r = parse(value);
    if (r.ok) return r.value;
    report(r.message);
    return INVALID;
  };
}

/** A required leaf: absence is reported with an example of what to write. */
function required<T>(check: Check<T>, example: string) {
  return leaf<T>((value, report) => {
    if (value === undefined) {
      report(`required; for example ${example}`);
      return INVALID;
    }
    return check(value, report);
  });
}

const NAME = /^[A-Za-z0-9._-]+$/;
const checkName: Check<string> = (v, report) => {
  if (typeof v !== 'string' || !NAME.test(v)) {
    report(`expected a name of letters, digits, '.', '_' or '-', got ${describeValue(v)}`);
    return INVALID;
  }
  return v;
};

const checkText: Check<string> = (v, report) => {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') {
    report(`expected text, got ${describeValue(v)}; quote it: "${String(v)}"`);
    return INVALID;
  }
  report(`expected text, got ${describeValue(v)}`);
  return INVALID;
};

const checkBool: Check<boolean> = (v, report) => {
  if (typeof v === 'boolean') return v;
  report(`expected true or false, got ${describeValue(v)}`);
  return INVALID;
};

const checkQos: Check<QoS> = (v, report) => {
  if (v === 0 || v === 1 || v === 2) return v;
  report(`expected 0, 1 or 2, got ${describeValue(v)}`);
  return INVALID;
};

function integerIn(min: number, max: number, what = 'an integer'): Check<number> {
  return (v, report) => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    report(`expected ${what} ${range}, got ${describeValue(v)}`);
    return INVALID;
  };
}

const checkDuration = parsed(parseDuration);
const checkRate = parsed(parseRate);

/** A duration in whole seconds (keepalive, session expiry, will delay). `never` is the v5 maximum when allowed. */
function wholeSeconds(max: number, allowNever: boolean): Check<number> {
  return (v, report) => {
    if (allowNever && v === 'never') return max;
    const d = parseDuration(v);
    if (!d.ok) {
      report(allowNever ? `${d.message} (or never)` : d.message);
      return INVALID;
    }
    if (d.value % 1000 !== 0) {
      report(`expected whole seconds (MQTT sends this in seconds), got ${describeValue(v)}; write ${Math.max(1, Math.round(d.value / 1000))}s`);
      return INVALID;
    }
    const sec = d.value / 1000;
    if (sec > max) {
      report(`expected at most ${formatDuration(max * 1000)}${allowNever ? ' (or never)' : ''}, got ${describeValue(v)}`);
      return INVALID;
    }
    return sec;
  };
}

const checkConnectRate: Check<number> = (v, report) => {
  if (v === 'unlimited') return Infinity;
  const r = parseRate(v);
  if (r.ok) return r.value;
  report(`${r.message} (or unlimited)`);
  return INVALID;
};

const checkJitter: Check<number> = (v, report) => {
  const p = parsePercentage(v);
  if (!p.ok) {
    report(p.message);
    return INVALID;
  }
  if (p.value < 0 || p.value >= 1) {
    report(`expected a jitter from 0 up to (not including) 100%, got ${describeValue(v)}; e.g. 10% or 0.1`);
    return INVALID;
  }
  return p.value;
};

const checkMultiplier: Check<number> = (v, report) => {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 1) return v;
  report(`expected a number of 1 or more (2 doubles the delay after each failed attempt), got ${describeValue(v)}`);
  return INVALID;
};

const checkIp: Check<string> = (v, report) => {
  if (typeof v === 'string' && isIP(v) !== 0) return v;
  report(`expected an IPv4 or IPv6 address like 127.0.0.2, got ${describeValue(v)}`);
  return INVALID;
};

const checkSeed: Check<number> = (v, report) => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  report(`expected an integer of 0 or more, got ${describeValue(v)}`);
  return INVALID;
};

const defaultPorts: Record<string, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/** A broker URL, normalized: `mqtt://host:port`, `ws://host:port/path` (path /mqtt when none is given). */
export function normalizeBrokerUrl(input: unknown): Parsed<string> {
  if (typeof input !== 'string') return { ok: false, message: `expected a broker URL like mqtt://127.0.0.1:1883, got ${describeValue(input)}` };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input)?.[1]?.toLowerCase();
  if (scheme === undefined) return { ok: false, message: `expected a broker URL like mqtt://${input}:1883 (schemes mqtt, mqtts, ws, wss), got ${JSON.stringify(input)}` };
  if (!(scheme in defaultPorts)) return { ok: false, message: `unsupported scheme ${scheme}:// in ${JSON.stringify(input)}; use mqtt, mqtts, ws or wss` };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, message: `${JSON.stringify(input)} is not a valid URL; expected e.g. ${scheme}://broker.example.com:${defaultPorts[scheme]}` };
  }
  if (url.hostname === '') return { ok: false, message: `${JSON.stringify(input)} has no host; expected e.g. ${scheme}://127.0.0.1:${defaultPorts[scheme]}` };
  if (url.username !== '' || url.password !== '') return { ok: false, message: `${JSON.stringify(input)} carries credentials; put them in target.username and target.password instead` };
  const port = url.port === '' ? defaultPorts[scheme]! : Number(url.port);
  const base = `${scheme}://${url.hostname}:${port}`;
  if (scheme === 'mqtt' || scheme === 'mqtts') {
    if (url.pathname !== '/' && url.pathname !== '') return { ok: false, message: `${JSON.stringify(input)}: ${scheme}:// URLs take no path; remove ${url.pathname}` };
    return { ok: true, value: base };
  }
  const explicitPath = /^wss?:\/\/[^/?#]+[/?#]/i.test(input);
  return { ok: true, value: base + (explicitPath ? url.pathname + url.search : '/mqtt') };
}
const checkUrl = parsed(normalizeBrokerUrl);

const checkProtocol: Check<4 | 5> = (v, report) => {
  if (v === 5 || v === '5' || v === '5.0') return 5;
  if (v === 4 || v === '4' || v === '3.1.1') return 4;
  if (v === 3.1 || v === '3.1' || v === 3) {
    report('MQTT 3.1 is not supported; use 3.1.1 or 5');
    return INVALID;
  }
  report(`expected 5 or 3.1.1, got ${describeValue(v)}`);
  return INVALID;
};

const checkModel: Check<Exclude<DeviceModel, 'consumer'>> = (v, report) => {
  if (v === 'sensor' || v === 'plc' || v === 'gateway') return v;
  if (v === 'consumer') {
    report('consumers are declared under consumers:, not fleets:; move this entry there');
    return INVALID;
  }
  report(`expected sensor, plc or gateway, got ${describeValue(v)}`);
  return INVALID;
};

const checkConsumerModel: Check<'consumer'> = (v, report) => {
  if (v === 'consumer') return v;
  report(`entries under consumers: are always model consumer; move a ${describeValue(v)} device to fleets:, or remove model`);
  return INVALID;
};

type Scalar = string | number;
const isScalar = (v: unknown): v is Scalar => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** `site: plant-1`, `{ cycle: [..] }`, `{ pick: [..] }`, `{ range: [min, max] }`. */
const checkAttribute: Check<AttributeSpec> = (v, report) => {
  const forms = 'a value, { cycle: [a, b] }, { pick: [a, b] } or { range: [min, max] }';
  if (isScalar(v)) return { kind: 'value', value: v };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    report(`expected ${forms}, got ${describeValue(v)}${Array.isArray(v) ? '; write { cycle: [...] } (round-robin) or { pick: [...] } (random per device)' : ''}`);
    return INVALID;
  }
  const keys = Object.keys(v);
  const known = ['cycle', 'pick', 'range'];
  if (keys.length !== 1 || !known.includes(keys[0]!)) {
    const unknown = keys.find((k) => !known.includes(k));
    const near = unknown === undefined ? undefined : closest(unknown, known);
    report(`expected ${forms}${unknown !== undefined ? `; unknown key ${unknown}${near !== undefined ? `, did you mean ${near}?` : ''}` : '; give exactly one of cycle, pick, range'}`);
    return INVALID;
  }
  const key = keys[0] as 'cycle' | 'pick' | 'range';
  const list = (v as Record<string, unknown>)[key];
  if (key === 'range') {
    if (!Array.isArray(list) || list.length !== 2 || !list.every((n) => Number.isInteger(n)) || (list[0] as number) > (list[1] as number)) {
      report('expected range: [min, max] with integers min <= max, e.g. range: [1, 8]', [key]);
      return INVALID;
    }
    return { kind: 'range', min: list[0] as number, max: list[1] as number };
  }
  if (!Array.isArray(list) || list.length === 0 || !list.every(isScalar)) {
    report(`expected a non-empty list of values, e.g. ${key}: [north, south]`, [key]);
    return INVALID;
  }
  return { kind: key, values: list };
};

// ---- generator expressions ----

const generatorUsage: Record<string, string> = {
  counter: 'counter(), counter(start) or counter(start, step)',
  sine: 'sine(mean, amplitude, period), e.g. sine(800, 40, 60s)',
  randomWalk: 'randomWalk(start, step) or randomWalk(start, step, min, max), e.g. randomWalk(20, 0.5, 0, 40)',
  gaussian: 'gaussian(mean, stddev), e.g. gaussian(70, 2.5)',
  uniform: 'uniform(min, max), e.g. uniform(0, 100)',
  enum: 'enum(a, b, ...), e.g. enum(open, closed)',
  bytes: 'bytes(n), e.g. bytes(64)',
  timestamp: 'timestamp()',
};
export const generatorNames = Object.keys(generatorUsage);
const CALL = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$/s;

function enumValue(text: string): string | number | boolean {
  const t = text.trim();
  const quoted = /^"(.*)"$|^'(.*)'$/.exec(t);
  if (quoted !== null) return quoted[1] ?? quoted[2] ?? '';
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (/^-?(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i.test(t)) return Number(t);
  return t;
}

/**
 * A generator expression (`sine(800,40,60s)`), a template (`"{site}"`) or a constant. Strings that are not
 * calls of a known generator are constants, unless they look like a misspelt one.
 */
export function parseGenerator(value: unknown): Parsed<GeneratorSpec> {
  if (value === null || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return { ok: true, value: { kind: 'constant', value } };
  if (typeof value !== 'string') return { ok: false, message: `expected a generator like uniform(0, 100), a text, a number or true/false, got ${describeValue(value)} (payload fields are flat)` };
  const call = CALL.exec(value);
  if (call === null) {
    if (hasPlaceholders(value)) return { ok: true, value: { kind: 'template', template: value } };
    return { ok: true, value: { kind: 'constant', value } };
  }
  const name = call[1]!;
  if (!(name in generatorUsage)) {
    // A near miss (sin, Uniform, gausian) is a typo; anything else (valve(3)) is just text.
    const near = closest(name, generatorNames, name.length >= 4 ? 2 : 1);
    if (near !== undefined) {
      return { ok: false, message: `unknown generator ${name}(); did you mean ${generatorUsage[near]}?` };
    }
    return { ok: true, value: { kind: 'constant', value } };
  }
  const usage = `expected ${generatorUsage[name]}, got ${JSON.stringify(value)}`;
  const argText = call[2]!.trim();
  const args = argText === '' ? [] : argText.split(',').map((a) => a.trim());
  const numbers = args.map((a) => (/^-?(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i.test(a) ? Number(a) : NaN));
  const allNumbers = (from: number, to: number): boolean => numbers.slice(from, to).every((n) => Number.isFinite(n));
  const bad = (why?: string): Parsed<GeneratorSpec> => ({ ok: false, message: why === undefined ? usage : `${usage}; ${why}` });
  switch (name) {
    case 'counter':
      if (args.length > 2 || !allNumbers(0, args.length)) return bad();
      return { ok: true, value: { kind: 'counter', start: numbers[0] ?? 0, step: numbers[1] ?? 1 } };
    case 'sine': {
      if (args.length !== 3 || !allNumbers(0, 2)) return bad();
      const period = parseDuration(args[2]);
      if (!period.ok) return bad(`the period: ${period.message}`);
      if (period.value <= 0) return bad('the period must be above 0');
      return { ok: true, value: { kind: 'sine', mean: numbers[0]!, amplitude: numbers[1]!, periodMs: period.value } };
    }
    case 'randomWalk': {
      if ((args.length !== 2 && args.length !== 4) || !allNumbers(0, args.length)) return bad();
      const [start, step, min = -Number.MAX_VALUE, max = Number.MAX_VALUE] = numbers as [number, number, number?, number?];
      if (step < 0) return bad('step must be 0 or more');
      if (min > max) return bad('min must not exceed max');
      if (start < min || start > max) return bad('start must be within [min, max]');
      return { ok: true, value: { kind: 'randomWalk', start, step, min, max } };
    }
    case 'gaussian':
      if (args.length !== 2 || !allNumbers(0, 2)) return bad();
      if (numbers[1]! < 0) return bad('stddev must be 0 or more');
      return { ok: true, value: { kind: 'gaussian', mean: numbers[0]!, stddev: numbers[1]! } };
    case 'uniform':
      if (args.length !== 2 || !allNumbers(0, 2)) return bad();
      if (numbers[0]! > numbers[1]!) return bad('min must not exceed max');
      return { ok: true, value: { kind: 'uniform', min: numbers[0]!, max: numbers[1]! } };
    case 'enum':
      if (args.length === 0 || args.some((a) => a === '')) return bad();
      return { ok: true, value: { kind: 'enum', values: args.map(enumValue) } };
    case 'bytes':
      if (args.length !== 1 || !Number.isInteger(numbers[0]) || numbers[0]! < 0 || numbers[0]! > 1_048_576) return bad('n is a whole number of bytes up to 1048576');
      return { ok: true, value: { kind: 'bytes', size: numbers[0]! } };
    default:
      if (args.length !== 0) return bad();
      return { ok: true, value: { kind: 'timestamp' } };
  }
}

/** `{ field: generator, ... }` (JSON), `{ size: n }` (raw bytes) or `{ json: { ... } }` (JSON, explicit). */
const checkPayload: Check<PayloadSpec> = (v, report) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    report(`expected a mapping of JSON fields like { psi: "sine(800,40,60s)" } or { size: 256 } for raw bytes, got ${describeValue(v)}`);
    return INVALID;
  }
  const record = v as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === 'size') {
    const size = record.size;
    if (typeof size === 'number' && Number.isInteger(size) && size >= 0 && size <= 268_435_435) return { kind: 'bytes', size };
    report(`expected a whole number of bytes (0 or more), got ${describeValue(size)}`, ['size']);
    return INVALID;
  }
  let fields = record;
  let prefix: string[] = [];
  if (keys.length === 1 && keys[0] === 'json' && typeof record.json === 'object' && record.json !== null && !Array.isArray(record.json)) {
    fields = record.json as Record<string, unknown>;
    prefix = ['json'];
  }
  const out: Record<string, GeneratorSpec> = {};
  let valid = true;
  for (const [key, value] of Object.entries(fields)) {
    const g = parseGenerator(value);
    if (g.ok) out[key] = g.value;
    else {
      report(g.message, [...prefix, key]);
      valid = false;
    }
  }
  return valid ? { kind: 'json', fields: out } : INVALID;
};

/** A `networks:` entry: a preset name or a mapping of overrides (simulator/faults/network-spec.ts). */
const checkNetwork: Check<NetworkProfile> = (v, report) => {
  const r = parseNetworkSpec(v);
  if (r.ok) return r.profile;
  for (const issue of r.issues) report(issue.message, issue.path.length > 0 ? issue.path : undefined);
  return INVALID;
};

const checkAssertion: Check<AssertionSpec> = (v, report) => {
  if (typeof v !== 'string') {
    report(`expected an assertion like "latency.e2e.p99 < 500ms", got ${describeValue(v)}`);
    return INVALID;
  }
  try {
    return parseAssertion(v);
  } catch (err) {
    if (!(err instanceof AssertionSyntaxError)) throw err;
    report(err.message);
    return INVALID;
  }
};

// ---------------------------------------------------------------------------------------------------
// The document schema

/** Unknown keys of a strict mapping: one message per key, in the order zod lists them (see issueList). */
function unknownKeysMessage(keys: readonly PropertyKey[], known: readonly string[], hints: Record<string, string>): string {
  return keys
    .map((key) => {
      const k = String(key);
      if (hints[k] !== undefined) return `unknown key; ${hints[k]}`;
      const near = closest(k, known);
      return near !== undefined ? `unknown key; did you mean ${near}?` : `unknown key; expected one of ${known.join(', ')}`;
    })
    .join('\n');
}

function mapping<S extends z.ZodRawShape>(shape: S, hints: Record<string, string> = {}) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known, hints) : undefined),
  });
}

const qos = leaf(checkQos);
const duration = leaf(checkDuration);
const text = leaf(checkText);
const bool = leaf(checkBool);
const urlString = z.string().transform((v, ctx) => {
  const r = normalizeBrokerUrl(v);
  if (r.ok) return r.value;
  ctx.addIssue({ code: 'custom', message: r.message, input: v });
  return z.NEVER;
});
const urlList = z.union([urlString, z.array(urlString).min(1, 'expected at least one URL')], { error: 'expected a broker URL or a list of them' });

const tlsSchema = mapping({
  ca: text.optional(),
  cert: text.optional(),
  key: text.optional(),
  rejectUnauthorized: bool.optional(),
  servername: text.optional(),
});

const targetSchema = z.union(
  [
    urlString,
    z.array(urlString).min(1, 'expected at least one URL'),
    mapping({
      url: urlString.optional(),
      urls: z.array(urlString).min(1, 'expected at least one URL').optional(),
      protocol: leaf(checkProtocol).optional(),
      username: text.optional(),
      password: text.optional(),
      tls: tlsSchema.optional(),
      connectTimeout: duration.optional(),
    }),
  ],
  { error: 'expected a broker URL like mqtt://127.0.0.1:1883, a list of URLs, or a mapping with url (or urls), protocol, username, password, tls' },
);

const subscriptionEntry = z.union([z.string(), mapping({ topic: required(checkText, 'topic: "alerts/#"'), qos: qos.optional() })], {
  error: 'expected a topic filter or { topic, qos }',
});

const publishSchema = mapping({
  topic: required(checkText, 'topic: "plant/{id}/temperature"'),
  qos: qos.optional(),
  every: duration.optional(),
  rate: leaf(checkRate).optional(),
  jitter: leaf(checkJitter).optional(),
  retain: bool.optional(),
  payload: leaf(checkPayload).optional(),
}, { interval: 'write every: 1s or rate: 5/s', period: 'write every: 1s or rate: 5/s' });

const commonFleetShape = {
  name: required(checkName, 'name: pressure-sensors'),
  count: leaf(integerIn(1, Number.MAX_SAFE_INTEGER)).optional(),
  clientId: text.optional(),
  attributes: z.record(z.string(), leaf(checkAttribute)).optional(),
  connect: z.union([z.string().transform((v, ctx) => {
    const r = checkConnectRate(v, (message) => ctx.addIssue({ code: 'custom', message, input: v }));
    return r === INVALID ? z.NEVER : r;
  }), mapping({ rate: leaf(checkConnectRate) })], { error: 'expected a connect rate like 200/s or { rate: 200/s }' }).optional(),
  session: mapping({ clean: bool.optional(), expiry: leaf(wholeSeconds(MAX_EXPIRY_SEC, true)).optional() }).optional(),
  keepalive: leaf(wholeSeconds(MAX_KEEPALIVE_SEC, false)).optional(),
  will: mapping({
    topic: required(checkText, 'topic: "status/{id}"'),
    payload: text.optional(),
    qos: qos.optional(),
    retain: bool.optional(),
    delay: leaf(wholeSeconds(MAX_EXPIRY_SEC, false)).optional(),
  }).optional(),
  subscribe: z.union([subscriptionEntry, z.array(subscriptionEntry)], { error: 'expected a list of topic filters or { topic, qos } entries' }).optional(),
  inflight: leaf(integerIn(1, 65_535)).optional(),
  sourceAddresses: z.array(leaf(checkIp)).optional(),
  reconnect: mapping({ initialDelay: duration.optional(), maxDelay: duration.optional(), multiplier: leaf(checkMultiplier).optional() }).optional(),
  target: urlList.optional(),
  network: leaf(checkName).optional(),
};

const fleetSchema = mapping({
  ...commonFleetShape,
  model: leaf(checkModel).optional(),
  publish: z.union([publishSchema, z.array(publishSchema)], { error: 'expected a publish entry { topic, qos, every, payload } or a list of them' }).optional(),
  sensors: leaf(integerIn(1, 1_000_000)).optional(),
  reply: mapping({ topic: text.optional(), qos: qos.optional(), retain: bool.optional() }).optional(),
}, { commands: 'only consumers send commands; move this entry under consumers:' });

const consumerSchema = mapping({
  ...commonFleetShape,
  model: leaf(checkConsumerModel).optional(),
  commands: mapping({
    fleet: required(checkName, 'fleet: valve-plcs'),
    topic: required(checkText, 'topic: "cmd/{target}"'),
    qos: qos.optional(),
    every: duration.optional(),
    rate: leaf(checkRate).optional(),
    jitter: leaf(checkJitter).optional(),
    payload: leaf(checkPayload).optional(),
  }).optional(),
}, {
  publish: 'consumers do not publish; move this entry to fleets: (model sensor), or use commands: to command a plc fleet',
  sensors: 'sensors is for gateway fleets under fleets:',
  reply: 'reply is for plc fleets under fleets:',
});

/** Broker operations of a chaos entry (`broker: kill`). */
const brokerOperations = ['kill', 'restart', 'pause'] as const;
type BrokerOperation = (typeof brokerOperations)[number];
const checkBrokerOperation: Check<BrokerOperation> = (v, report) => {
  if (typeof v === 'string' && (brokerOperations as readonly string[]).includes(v)) return v as BrokerOperation;
  const near = typeof v === 'string' ? closest(v, brokerOperations) : undefined;
  report(`expected kill, restart or pause, got ${describeValue(v)}${near !== undefined ? `; did you mean ${near}?` : ''}`);
  return INVALID;
};

/** One action per entry; which keys go with which action is checked in normalizeChaos. */
const chaosEntrySchema = mapping({
  at: required(checkDuration, 'at: 30s'),
  broker: leaf(checkBrokerOperation).optional(),
  exec: text.optional(),
  partition: leaf(checkName).optional(),
  reconnectStorm: leaf(checkName).optional(),
  downtime: duration.optional(),
  duration: duration.optional(),
  timeout: duration.optional(),
}, { kill: 'write broker: kill', restart: 'write broker: restart', pause: 'write broker: pause' });

export const scenarioDocumentSchema = mapping({
  name: required(checkName, 'name: smoke'),
  description: text.optional(),
  duration: duration.optional(),
  seed: leaf(checkSeed).optional(),
  drain: duration.optional(),
  target: targetSchema.nullable().optional(),
  phases: mapping({ rampUp: duration.optional(), steady: duration.optional(), rampDown: duration.optional() }).optional(),
  fleets: z.array(fleetSchema).optional(),
  consumers: z.array(consumerSchema).optional(),
  networks: z.record(z.string(), leaf(checkNetwork)).optional(),
  chaos: z.array(chaosEntrySchema).optional(),
  expect: z.array(leaf(checkAssertion)).optional(),
});

type Document = z.output<typeof scenarioDocumentSchema>;
type FleetEntry = z.output<typeof fleetSchema>;
type ConsumerEntry = z.output<typeof consumerSchema>;
type PublishEntry = z.output<typeof publishSchema>;
type ChaosEntry = z.output<typeof chaosEntrySchema>;

// ---------------------------------------------------------------------------------------------------
// zod issues → ScenarioIssue

type PathPart = PropertyKey;

export function formatPath(parts: readonly PathPart[]): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = String(part);
      out += /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key) ? (out === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

const expectedText: Record<string, string> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'text',
  number: 'a number',
  boolean: 'true or false',
};

function issueList(issues: readonly z.core.$ZodIssue[], base: readonly PathPart[] = []): ScenarioIssue[] {
  const out: ScenarioIssue[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case 'unrecognized_keys': {
        const lines = issue.message.split('\n');
        issue.keys.forEach((key, i) => out.push({ path: formatPath([...path, key]), message: lines[i] ?? 'unknown key' }));
        break;
      }
      case 'invalid_type':
        out.push({ path: formatPath(path), message: `expected ${expectedText[issue.expected] ?? issue.expected}, got ${describeValue(input)}` });
        break;
      case 'invalid_union': {
        // Report the branch the value was meant for: the one that did not fail on the value's type itself.
        const meant = issue.errors.filter((branch) => !branch.every((i) => i.code === 'invalid_type' && i.path.length === 0));
        if (meant.length === 1) out.push(...issueList(meant[0]!, path));
        else out.push({ path: formatPath(path), message: `${issue.message}, got ${describeValue(input)}` });
        break;
      }
      case 'too_small':
        out.push({ path: formatPath(path), message: issue.message.startsWith('Too small') ? `expected at least ${String(issue.minimum)} entries` : issue.message });
        break;
      default:
        out.push({ path: formatPath(path), message: issue.message });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Normalization

interface Located<T> {
  entry: T;
  path: string;
  spec: FleetSpec;
}

class Issues {
  readonly list: ScenarioIssue[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

/** Names a template may use, by where it appears. */
function placeholderSets(attributeNames: string[], gateway: boolean) {
  const device = ['id', 'fleet', 'index', ...attributeNames];
  return {
    clientId: ['fleet', 'index', ...attributeNames],
    device,
    publish: gateway ? [...device, 'sensor'] : device,
    command: [...device, 'target'],
  };
}

/** The placeholder values of device `index` of a fleet (with `sensor` 0 and a sample `target` for checks). */
function deviceVars(spec: FleetSpec, index: number, seed: number, extra: TemplateVars = {}): TemplateVars {
  const attributes = resolveAttributes(spec, index, seed);
  const base: TemplateVars = { ...attributes, fleet: spec.name, index };
  const clientId = compileTemplate(spec.clientId, Object.keys(base))(base);
  return { ...base, id: clientId, sensor: 0, ...extra };
}

/** Checks a template's placeholders, renders it for a sample device and checks the result as a topic name or filter. */
function checkTopic(
  issues: Issues, path: string, template: string, allowed: string[], vars: TemplateVars | undefined, kind: 'name' | 'filter',
): boolean {
  const problem = templateProblem(template, allowed);
  if (problem !== null) {
    issues.add(path, problem);
    return false;
  }
  if (vars === undefined) return true;
  const rendered = compileTemplate(template, allowed)(vars);
  const topicProblem = kind === 'name' ? topicNameProblem(rendered) : topicFilterProblem(rendered);
  if (topicProblem !== null) {
    const fix = kind === 'name' && /wildcard/.test(topicProblem) ? '; a publish topic names one topic, only subscriptions take + and #' : '';
    issues.add(path, `${topicProblem} (${JSON.stringify(template)} renders ${JSON.stringify(rendered)} for device 0)${fix}`);
    return false;
  }
  return true;
}

function checkPayloadTemplates(issues: Issues, path: string, payload: PayloadSpec, allowed: string[]): void {
  if (payload.kind !== 'json') return;
  for (const [key, field] of Object.entries(payload.fields)) {
    if (field.kind !== 'template') continue;
    const problem = templateProblem(field.template, allowed);
    if (problem !== null) issues.add(`${path}.${key}`, problem);
  }
}

function interval(issues: Issues, path: string, entry: { every?: number | undefined; rate?: number | undefined }, what: string): number {
  if (entry.every !== undefined && entry.rate !== undefined) {
    issues.add(path, `give every or rate, not both (every: ${formatDuration(entry.every)} is rate: ${1000 / entry.every}/s)`);
    return 1000;
  }
  if (entry.every !== undefined) {
    if (entry.every <= 0) {
      issues.add(`${path}.every`, `expected a duration above 0, got 0; ${what} needs a period like every: 1s`);
      return 1000;
    }
    return entry.every;
  }
  if (entry.rate !== undefined) return 1000 / entry.rate;
  issues.add(path, `${what} needs every (e.g. every: 1s) or rate (e.g. rate: 5/s)`);
  return 1000;
}

function normalizeCommon(
  issues: Issues, path: string, entry: FleetEntry | ConsumerEntry, model: DeviceModel, seed: number,
): FleetSpec {
  const attributes: Record<string, AttributeSpec> = {};
  for (const [name, spec] of Object.entries(entry.attributes ?? {})) {
    if ((builtinPlaceholders as readonly string[]).includes(name)) issues.add(`${path}.attributes.${name}`, `{${name}} is a built-in placeholder; rename the attribute`);
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) issues.add(`${path}.attributes[${JSON.stringify(name)}]`, 'attribute names are letters, digits and _ (they are used as {name} placeholders)');
    else attributes[name] = spec;
  }
  const reconnect = {
    initialDelayMs: entry.reconnect?.initialDelay ?? scenarioDefaults.reconnect.initialDelayMs,
    maxDelayMs: entry.reconnect?.maxDelay ?? scenarioDefaults.reconnect.maxDelayMs,
    multiplier: entry.reconnect?.multiplier ?? scenarioDefaults.reconnect.multiplier,
  };
  if (reconnect.maxDelayMs < reconnect.initialDelayMs) {
    issues.add(`${path}.reconnect.maxDelay`, `maxDelay (${formatDuration(reconnect.maxDelayMs)}) must not be below initialDelay (${formatDuration(reconnect.initialDelayMs)})`);
  }
  const connect = entry.connect;
  const spec: FleetSpec = {
    name: entry.name,
    model,
    count: entry.count ?? 1,
    clientId: entry.clientId ?? scenarioDefaults.clientId,
    attributes,
    connectRatePerSec: connect === undefined ? Infinity : typeof connect === 'number' ? connect : connect.rate,
    session: { clean: entry.session?.clean ?? true, expirySec: entry.session?.expiry ?? 0 },
    keepaliveSec: entry.keepalive ?? scenarioDefaults.keepaliveSec,
    publish: [],
    subscribe: [],
    sensorsPerDevice: 1,
    inflight: entry.inflight ?? scenarioDefaults.inflight,
    localAddresses: entry.sourceAddresses ?? [],
    reconnect,
  };
  if (entry.target !== undefined) spec.targetUrls = typeof entry.target === 'string' ? [entry.target] : entry.target;

  const names = placeholderSets(Object.keys(attributes), model === 'gateway');
  const clientIdProblem = spec.clientId === '' ? 'must not be empty; the default is {fleet}-{index}' : templateProblem(spec.clientId, names.clientId);
  let vars: TemplateVars | undefined;
  if (clientIdProblem !== null) issues.add(`${path}.clientId`, clientIdProblem);
  else vars = deviceVars(spec, 0, seed);

  const subs = entry.subscribe === undefined ? [] : Array.isArray(entry.subscribe) ? entry.subscribe : [entry.subscribe];
  const single = entry.subscribe !== undefined && !Array.isArray(entry.subscribe);
  subs.forEach((sub, i) => {
    const s: SubscriptionSpec = typeof sub === 'string' ? { topic: sub, qos: 0 } : { topic: sub.topic, qos: sub.qos ?? 0 };
    const subPath = `${path}.subscribe${single ? '' : `[${i}]`}${typeof sub === 'string' ? '' : '.topic'}`;
    checkTopic(issues, subPath, s.topic, names.device, vars, 'filter');
    spec.subscribe.push(s);
  });

  if (entry.will !== undefined) {
    const will: WillSpec = {
      topic: entry.will.topic,
      payload: entry.will.payload ?? '',
      qos: entry.will.qos ?? 0,
      retain: entry.will.retain ?? false,
      delaySec: entry.will.delay ?? 0,
    };
    checkTopic(issues, `${path}.will.topic`, will.topic, names.device, vars, 'name');
    const payloadProblem = templateProblem(will.payload, names.device);
    if (payloadProblem !== null) issues.add(`${path}.will.payload`, payloadProblem);
    spec.will = will;
  }
  return spec;
}

function normalizePublish(issues: Issues, path: string, entry: PublishEntry, names: string[], vars: TemplateVars | undefined): PublishSpec {
  const spec: PublishSpec = {
    topic: entry.topic,
    qos: entry.qos ?? 0,
    retain: entry.retain ?? false,
    intervalMs: interval(issues, path, entry, 'publish'),
    jitter: entry.jitter ?? 0,
    payload: entry.payload ?? scenarioDefaults.payload,
  };
  checkTopic(issues, `${path}.topic`, spec.topic, names, vars, 'name');
  checkPayloadTemplates(issues, `${path}.payload`, spec.payload, names);
  return spec;
}

function normalizeFleet(issues: Issues, path: string, entry: FleetEntry, seed: number): FleetSpec {
  const model = entry.model ?? 'sensor';
  const spec = normalizeCommon(issues, path, entry, model, seed);
  if (entry.count === undefined) issues.add(`${path}.count`, 'required; the number of devices, for example count: 100');
  const names = placeholderSets(Object.keys(spec.attributes), model === 'gateway');
  const vars = templateProblem(spec.clientId, names.clientId) === null && spec.clientId !== '' ? deviceVars(spec, 0, seed) : undefined;
  const list = entry.publish === undefined ? [] : Array.isArray(entry.publish) ? entry.publish : [entry.publish];
  const single = entry.publish !== undefined && !Array.isArray(entry.publish);
  spec.publish = list.map((p, i) => normalizePublish(issues, `${path}.publish${single ? '' : `[${i}]`}`, p, names.publish, vars));
  if (list.length === 0 && model !== 'plc') {
    issues.add(`${path}.publish`, `a ${model} fleet needs at least one publish entry, e.g. publish: { topic: "plant/{id}/value", qos: 1, every: 1s }`);
  }
  if (entry.sensors !== undefined && model !== 'gateway') issues.add(`${path}.sensors`, `sensors is only for model gateway (this fleet is model ${model}); remove it or set model: gateway`);
  spec.sensorsPerDevice = model === 'gateway' ? (entry.sensors ?? scenarioDefaults.gatewaySensors) : 1;
  if (entry.reply !== undefined && model !== 'plc') issues.add(`${path}.reply`, `reply is only for model plc (this fleet is model ${model}); remove it or set model: plc`);
  if (model === 'plc') {
    spec.reply = { topic: entry.reply?.topic ?? scenarioDefaults.replyTopic, qos: entry.reply?.qos ?? 1, retain: entry.reply?.retain ?? true };
    checkTopic(issues, `${path}.reply.topic`, spec.reply.topic, names.device, vars, 'name');
  }
  return spec;
}

function normalizeConsumer(issues: Issues, path: string, entry: ConsumerEntry, seed: number): FleetSpec {
  return normalizeCommon(issues, path, entry, 'consumer', seed);
}

function normalizeCommands(issues: Issues, consumer: Located<ConsumerEntry>, fleets: Array<Located<FleetEntry>>, seed: number): void {
  const raw = consumer.entry.commands;
  if (raw === undefined) return;
  const path = `${consumer.path}.commands`;
  const spec: CommandSpec = {
    fleet: raw.fleet,
    topic: raw.topic,
    qos: raw.qos ?? 0,
    intervalMs: interval(issues, path, raw, 'commands'),
    jitter: raw.jitter ?? 0,
    payload: raw.payload ?? scenarioDefaults.payload,
  };
  consumer.spec.commands = spec;
  const names = placeholderSets(Object.keys(consumer.spec.attributes), false).command;
  checkPayloadTemplates(issues, `${path}.payload`, spec.payload, names);
  const target = fleets.find((f) => f.spec.name === raw.fleet);
  const plcNames = fleets.filter((f) => f.spec.model === 'plc').map((f) => f.spec.name);
  if (target === undefined) {
    const near = closest(raw.fleet, fleets.map((f) => f.spec.name));
    issues.add(`${path}.fleet`, `no fleet named ${JSON.stringify(raw.fleet)}; ${near !== undefined ? `did you mean ${near}? ` : ''}${plcNames.length > 0 ? `the plc fleets are ${plcNames.join(', ')}` : 'declare a fleet with model: plc under fleets:'}`);
    checkTopic(issues, `${path}.topic`, spec.topic, names, undefined, 'name');
    return;
  }
  if (target.spec.model !== 'plc') {
    issues.add(`${path}.fleet`, `fleet ${raw.fleet} is model ${target.spec.model}; commands go to plc fleets${plcNames.length > 0 ? ` (${plcNames.join(', ')})` : ''}`);
    return;
  }
  if (templateProblem(spec.topic, names) === null && !spec.topic.includes('{target}')) {
    issues.add(`${path}.topic`, `must contain {target} (the receiving device's client id) so each command reaches one device, e.g. "cmd/{target}"`);
    return;
  }
  const clientIdOk = (spec: FleetSpec): boolean => templateProblem(spec.clientId, placeholderSets(Object.keys(spec.attributes), false).clientId) === null;
  if (!clientIdOk(target.spec) || !clientIdOk(consumer.spec)) {
    checkTopic(issues, `${path}.topic`, spec.topic, names, undefined, 'name');
    return;
  }
  const targetVars = deviceVars(target.spec, 0, seed);
  const vars = deviceVars(consumer.spec, 0, seed, { target: targetVars.id! });
  if (!checkTopic(issues, `${path}.topic`, spec.topic, names, vars, 'name')) return;
  const rendered = compileTemplate(spec.topic, names)(vars);
  const targetNames = placeholderSets(Object.keys(target.spec.attributes), false).device;
  const heard = target.spec.subscribe.some((sub) => {
    if (templateProblem(sub.topic, targetNames) !== null) return true; // already reported on the subscription
    const filter = compileTemplate(sub.topic, targetNames)(targetVars);
    return topicMatches(parseSharedFilter(filter)?.filter ?? filter, rendered);
  });
  if (!heard) {
    const suggestion = spec.topic.replaceAll('{target}', '{id}');
    issues.add(`${path}.topic`, `${JSON.stringify(rendered)} (a command to ${String(targetVars.id)}) matches no subscription of fleet ${target.spec.name}; add subscribe: [{ topic: "${suggestion}", qos: ${spec.qos} }] to ${target.path}`);
  }
}

/** Client ids must be unique across the scenario; found by rendering them (cheap up to a few hundred thousand). */
function checkClientIds(issues: Issues, located: Array<Located<FleetEntry | ConsumerEntry>>, seed: number): void {
  const total = located.reduce((n, l) => n + l.spec.count, 0);
  if (total > MAX_RENDERED_CLIENT_IDS) return;
  const owner = new Map<string, { path: string; index: number }>();
  for (const { spec, path } of located) {
    const names = placeholderSets(Object.keys(spec.attributes), false).clientId;
    if (spec.clientId === '' || templateProblem(spec.clientId, names) !== null) continue;
    const render = compileTemplate(spec.clientId, names);
    for (let index = 0; index < spec.count; index++) {
      const vars: TemplateVars = { ...resolveAttributes(spec, index, seed), fleet: spec.name, index };
      const id = render(vars);
      const previous = owner.get(id);
      if (previous === undefined) {
        owner.set(id, { path, index });
        continue;
      }
      if (previous.path === path) {
        issues.add(`${path}.clientId`, `${JSON.stringify(spec.clientId)} renders ${JSON.stringify(id)} for devices ${previous.index} and ${index}; include {index} so every device gets its own client id`);
      } else {
        issues.add(`${path}.clientId`, `${JSON.stringify(spec.clientId)} renders ${JSON.stringify(id)} (device ${index}), which ${previous.path} also uses; client ids must be unique across the scenario (include {fleet} and {index})`);
      }
      break;
    }
  }
}

/** Checks network names and gives every fleet with `network:` its resolved profile (a `networks:` entry or a preset). */
function normalizeNetworks(issues: Issues, doc: Document, located: Array<Located<FleetEntry | ConsumerEntry>>): Record<string, NetworkProfile> | undefined {
  const declared = doc.networks;
  for (const name of Object.keys(declared ?? {})) {
    if (!NAME.test(name)) issues.add(`networks[${JSON.stringify(name)}]`, "network names are letters, digits, '.', '_' or '-'");
  }
  for (const { entry, spec, path } of located) {
    const name = entry.network;
    if (name === undefined) continue;
    const profile = declared !== undefined && Object.hasOwn(declared, name) ? declared[name]! : isPresetName(name) ? resolveProfile(name) : undefined;
    if (profile === undefined) {
      issues.add(`${path}.network`, unknownPresetMessage(name, Object.keys(declared ?? {})));
      continue;
    }
    spec.network = profile;
    spec.networkName = name;
  }
  return declared;
}

function automaticRampUpMs(fleets: FleetSpec[]): number {
  let longest = 0;
  for (const f of fleets) if (Number.isFinite(f.connectRatePerSec)) longest = Math.max(longest, Math.ceil((f.count / f.connectRatePerSec) * 1000));
  return longest;
}

function normalizePhases(issues: Issues, doc: Document, fleets: FleetSpec[]): { durationMs: number; phases: Phases } {
  const given = doc.phases ?? {};
  const d = doc.duration;
  const fallback = { durationMs: 1000, phases: { rampUpMs: 0, steadyMs: 1000, rampDownMs: 0 } };
  if (d === undefined) {
    if (given.steady === undefined) {
      issues.add('duration', 'required unless phases gives steady (and optionally rampUp and rampDown); for example duration: 60s');
      return fallback;
    }
    const phases = { rampUpMs: given.rampUp ?? 0, steadyMs: given.steady, rampDownMs: given.rampDown ?? 0 };
    const durationMs = phases.rampUpMs + phases.steadyMs + phases.rampDownMs;
    if (durationMs <= 0) issues.add('phases', 'the phases add up to 0s; give steady a duration above 0');
    return { durationMs, phases };
  }
  if (d <= 0) {
    issues.add('duration', 'expected a duration above 0, e.g. duration: 60s');
    return fallback;
  }
  const rampDownMs = given.rampDown ?? 0;
  const rampUpMs = given.rampUp ?? Math.min(automaticRampUpMs(fleets), Math.floor(d * scenarioDefaults.maxAutoRampUpShare), Math.max(0, d - rampDownMs - (given.steady ?? 0)));
  const steadyMs = given.steady ?? d - rampUpMs - rampDownMs;
  const sum = rampUpMs + steadyMs + rampDownMs;
  if (steadyMs < 0 || Math.abs(sum - d) > 1e-6) {
    const show = (name: string, ms: number, isGiven: boolean): string => `${name} ${formatDuration(ms)}${isGiven ? '' : ' (default)'}`;
    const parts = [show('rampUp', rampUpMs, given.rampUp !== undefined), given.steady !== undefined ? show('steady', steadyMs, true) : null, show('rampDown', rampDownMs, given.rampDown !== undefined)].filter((p) => p !== null);
    const total = given.steady !== undefined ? sum : rampUpMs + rampDownMs;
    issues.add('phases', `${parts.join(' + ')} = ${formatDuration(total)}, ${given.steady !== undefined ? 'but' : 'already more than'} duration is ${formatDuration(d)}; make the phases add up to the duration, or drop duration (it is then their sum)`);
    return { durationMs: d, phases: fallback.phases };
  }
  return { durationMs: d, phases: { rampUpMs, steadyMs, rampDownMs } };
}

function checkReadable(issues: Issues, path: string, file: string): void {
  try {
    accessSync(file, fsConstants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    issues.add(path, `cannot read ${file}${code === 'ENOENT' ? ': no such file' : code !== undefined ? ` (${code})` : ''}; paths are relative to the scenario file's folder`);
  }
}

function normalizeTarget(issues: Issues, doc: Document, options: NormalizeOptions): TargetSpec | null {
  const raw = doc.target;
  let target: TargetSpec | null;
  if (raw === undefined || raw === null) target = null;
  else if (typeof raw === 'string') target = { urls: [raw], protocolVersion: scenarioDefaults.protocolVersion, connectTimeoutMs: scenarioDefaults.connectTimeoutMs };
  else if (Array.isArray(raw)) target = { urls: raw, protocolVersion: scenarioDefaults.protocolVersion, connectTimeoutMs: scenarioDefaults.connectTimeoutMs };
  else {
    if (raw.url !== undefined && raw.urls !== undefined) issues.add('target', 'give url or urls, not both');
    const urls = raw.urls ?? (raw.url !== undefined ? [raw.url] : []);
    if (urls.length === 0 && !(options.overrides?.targetUrls?.length)) issues.add('target.url', 'required; for example url: mqtt://broker.example.com:1883 (omit target for the embedded broker)');
    target = { urls, protocolVersion: raw.protocol ?? scenarioDefaults.protocolVersion, connectTimeoutMs: raw.connectTimeout ?? scenarioDefaults.connectTimeoutMs };
    if (raw.connectTimeout !== undefined && raw.connectTimeout <= 0) issues.add('target.connectTimeout', 'expected a duration above 0, e.g. 10s');
    if (raw.username !== undefined) target.username = raw.username;
    if (raw.password !== undefined) target.password = raw.password;
    if (raw.tls !== undefined) {
      const tls: TlsSpec = { rejectUnauthorized: raw.tls.rejectUnauthorized ?? true };
      for (const key of ['ca', 'cert', 'key'] as const) {
        const file = raw.tls[key];
        if (file === undefined) continue;
        tls[key] = resolvePath(options.baseDir, file);
        checkReadable(issues, `target.tls.${key}`, tls[key]);
      }
      if ((tls.cert === undefined) !== (tls.key === undefined)) issues.add('target.tls', 'cert and key go together (a client certificate needs its private key); give both or neither');
      if (raw.tls.servername !== undefined) tls.servername = raw.tls.servername;
      target.tls = tls;
    }
  }
  const overrideUrls = options.overrides?.targetUrls;
  if (overrideUrls !== undefined && overrideUrls.length > 0) {
    const urls: string[] = [];
    for (const u of overrideUrls) {
      const r = normalizeBrokerUrl(u);
      if (r.ok) urls.push(r.value);
      else issues.add('--target', r.message);
    }
    target = { ...(target ?? { protocolVersion: scenarioDefaults.protocolVersion, connectTimeoutMs: scenarioDefaults.connectTimeoutMs }), urls };
  }
  if (target?.tls !== undefined && target.urls.length > 0 && !target.urls.some((u) => u.startsWith('mqtts:') || u.startsWith('wss:'))) {
    issues.add('target.tls', 'tls is set but no URL uses mqtts:// or wss://; change the scheme or remove tls');
  }
  return target;
}

const chaosExample = '{ at: 30s, broker: kill }, { at: 30s, exec: "systemctl restart mosquitto" }, { at: 30s, partition: <fleet>, duration: 10s } or { at: 30s, reconnectStorm: <fleet> }';
const defaultChaosDowntimeMs = 1000;
const defaultExecTimeoutMs = 30_000;

/** The chaos timeline: one action per entry, options that fit it, times within the duration, fleets that exist. */
function normalizeChaos(issues: Issues, entries: ChaosEntry[], durationMs: number, fleetNames: string[], target: TargetSpec | null): ChaosAction[] {
  const actions: ChaosAction[] = [];
  entries.forEach((entry, i) => {
    const path = `chaos[${i}]`;
    const given = (['broker', 'exec', 'partition', 'reconnectStorm'] as const).filter((k) => entry[k] !== undefined);
    if (given.length !== 1) {
      issues.add(path, given.length === 0
        ? `give one action: broker (kill, restart or pause), exec, partition or reconnectStorm, e.g. ${chaosExample}`
        : `one action per entry, got ${given.join(' and ')}; split them into ${given.length} entries`);
      return;
    }
    const action = given[0]!;
    const label = action === 'broker' ? `broker: ${entry.broker}` : action;
    let valid = true;
    if (entry.at >= durationMs) {
      issues.add(`${path}.at`, `${formatDuration(entry.at)} is not within the timeline (duration ${formatDuration(durationMs)}); give a time below ${formatDuration(durationMs)}`);
      valid = false;
    }
    const allowed = (key: 'downtime' | 'duration' | 'timeout', ok: boolean, usage: string): void => {
      if (entry[key] === undefined) return;
      if (!ok) {
        issues.add(`${path}.${key}`, `${key} does not apply to ${label}; ${usage}`);
        valid = false;
      } else if (entry[key] <= 0) {
        issues.add(`${path}.${key}`, `expected a duration above 0, e.g. ${key}: 5s`);
        valid = false;
      }
    };
    allowed('downtime', entry.broker === 'kill', 'it is how long a killed broker stays down (broker: kill)');
    allowed('duration', entry.broker === 'pause' || action === 'partition', 'it is how long a broker: pause or a partition lasts');
    allowed('timeout', action === 'exec', 'it bounds an exec command');
    if ((entry.broker === 'pause' || action === 'partition') && entry.duration === undefined) {
      issues.add(`${path}.duration`, `required for ${label}; for example duration: 10s`);
      valid = false;
    }
    if (action === 'broker' && target !== null) {
      issues.add(`${path}.broker`, 'broker actions act on the embedded broker, but this run has a target (in the scenario or --target); for an external broker use exec with the command that does it, e.g. { at: 30s, exec: "systemctl restart mosquitto" }');
      valid = false;
    }
    if (action === 'exec' && entry.exec!.trim() === '') {
      issues.add(`${path}.exec`, 'expected a shell command, got an empty text');
      valid = false;
    }
    const fleet = entry.partition ?? entry.reconnectStorm;
    if (fleet !== undefined && !fleetNames.includes(fleet)) {
      const near = closest(fleet, fleetNames);
      issues.add(`${path}.${action}`, `no fleet or consumer named ${JSON.stringify(fleet)}; ${near !== undefined ? `did you mean ${near}?` : `the names are ${fleetNames.join(', ')}`}`);
      valid = false;
    }
    if (!valid) return;
    const atMs = entry.at;
    switch (action) {
      case 'broker':
        if (entry.broker === 'kill') actions.push({ kind: 'broker-kill', atMs, downtimeMs: entry.downtime ?? defaultChaosDowntimeMs });
        else if (entry.broker === 'restart') actions.push({ kind: 'broker-restart', atMs });
        else actions.push({ kind: 'broker-pause', atMs, durationMs: entry.duration! });
        break;
      case 'exec':
        actions.push({ kind: 'exec', atMs, command: entry.exec!, timeoutMs: entry.timeout ?? defaultExecTimeoutMs });
        break;
      case 'partition':
        actions.push({ kind: 'partition', atMs, fleet: fleet!, durationMs: entry.duration! });
        break;
      case 'reconnectStorm':
        actions.push({ kind: 'reconnect-storm', atMs, fleet: fleet! });
        break;
    }
  });
  return actions;
}

/** Validates a parsed YAML document and normalizes it into a Scenario. */
export function scenarioFromDocument(document: unknown, options: NormalizeOptions): ScenarioParse {
  if (document === null || document === undefined) {
    return { ok: false, issues: [{ path: '', message: 'the scenario is empty; it needs at least name and fleets (see docs/scenarios.md)' }] };
  }
  if (typeof document !== 'object' || Array.isArray(document)) {
    return { ok: false, issues: [{ path: '', message: `expected a mapping of scenario keys (name, duration, fleets, ...), got ${describeValue(document)}` }] };
  }
  // Top-level keys starting with x- are free for YAML anchors (x-defaults: &defaults ...).
  const withoutExtensions = Object.fromEntries(Object.entries(document).filter(([key]) => !key.startsWith('x-')));
  const parsed = scenarioDocumentSchema.safeParse(withoutExtensions, { reportInput: true });
  if (!parsed.success) return { ok: false, issues: issueList(parsed.error.issues) };
  const doc = parsed.data;
  const issues = new Issues();
  const seed = options.overrides?.seed ?? doc.seed ?? scenarioDefaults.seed;

  const fleets: Array<Located<FleetEntry>> = (doc.fleets ?? []).map((entry, i) => ({ entry, path: `fleets[${i}]`, spec: normalizeFleet(issues, `fleets[${i}]`, entry, seed) }));
  const consumers: Array<Located<ConsumerEntry>> = (doc.consumers ?? []).map((entry, i) => ({ entry, path: `consumers[${i}]`, spec: normalizeConsumer(issues, `consumers[${i}]`, entry, seed) }));
  const all: Array<Located<FleetEntry | ConsumerEntry>> = [...fleets, ...consumers];
  if (all.length === 0) issues.add('', 'a scenario needs at least one entry under fleets or consumers');

  const seen = new Map<string, string>();
  for (const { spec, path } of all) {
    const previous = seen.get(spec.name);
    if (previous !== undefined) issues.add(`${path}.name`, `${JSON.stringify(spec.name)} is already the name of ${previous}; fleet and consumer names must be unique`);
    else seen.set(spec.name, path);
  }
  for (const consumer of consumers) normalizeCommands(issues, consumer, fleets, seed);
  const networks = normalizeNetworks(issues, doc, all);
  checkClientIds(issues, all, seed);

  const specs = all.map((l) => l.spec);
  const { durationMs, phases } = normalizePhases(issues, doc, specs);
  const target = normalizeTarget(issues, doc, options);

  const names = specs.map((s) => s.name);
  const chaos = normalizeChaos(issues, doc.chaos ?? [], durationMs, names, target);
  const expect = doc.expect ?? [];
  expect.forEach((assertion, i) => {
    const problem = metricProblem(assertion.metric, names) ?? assertionUnitProblem(assertion.source, assertion.metric);
    if (problem !== null) issues.add(`expect[${i}]`, problem);
  });

  if (issues.list.length > 0) return { ok: false, issues: issues.list };
  const scenario: Scenario = {
    name: doc.name,
    ...(doc.description !== undefined ? { description: doc.description } : {}),
    durationMs,
    seed,
    target,
    phases,
    drainMs: doc.drain ?? scenarioDefaults.drainMs,
    fleets: specs,
    chaos,
    expect,
    ...(networks !== undefined ? { networks } : {}),
    ...(options.sourceFile !== undefined ? { sourceFile: options.sourceFile } : {}),
  };
  return { ok: true, scenario };
}
