/**
 * Broker configuration from a YAML file (broker.yaml) and/or command-line flags, validated against
 * one declarative table. The table is the single source for validation, the `mqtt-sim broker` flags
 * and docs/broker-options.md.
 *
 * YAML keys are camelCase, exactly the BrokerOptions field names, plus `host` and `port` for the
 * listener. Durations are plain numbers of seconds. Flags are the kebab-case forms of the same names
 * (`maxPacketSize` → `--max-packet-size`) and override the file.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';

/** BrokerOptions a user can set; authenticate, store and clock are for code, not configuration. */
export type ConfigurableOption = Exclude<keyof BrokerOptions, 'authenticate' | 'store' | 'clock'>;

export interface ListenConfig {
  host: string;
  port: number;
}

/** Where the broker keeps its state: `sqlite` survives a kill -9 (durability rule), `memory` does not. */
export interface StorageConfig {
  persistence: 'sqlite' | 'memory';
  dataDir: string;
  durability: 'process' | 'power';
}

/** Every configurable value, fully resolved. */
export type ConfigValues = ListenConfig & StorageConfig & Pick<BrokerOptions, ConfigurableOption>;
export type ConfigKey = keyof ConfigValues;

export interface BrokerConfig {
  listen: ListenConfig;
  storage: StorageConfig;
  /** Only the options the user set; createBroker() fills in the rest from defaultBrokerOptions. */
  options: Partial<BrokerOptions>;
}

interface SpecBase {
  /** One sentence for --help and the docs. */
  doc: string;
}
export interface IntegerSpec extends SpecBase {
  type: 'integer';
  min: number;
  /** Omitted: any safe integer from min up. */
  max?: number;
}
/** A duration in seconds; fractions allowed. */
export interface SecondsSpec extends SpecBase {
  type: 'seconds';
  min: number;
  max: number;
}
export interface BooleanSpec extends SpecBase {
  type: 'boolean';
}
export interface EnumSpec<T extends string = string> extends SpecBase {
  type: 'enum';
  values: readonly T[];
}
export interface HostSpec extends SpecBase {
  type: 'host';
}
/** A file-system path (relative paths are relative to the working directory). */
export interface PathSpec extends SpecBase {
  type: 'path';
}
export type OptionSpec = IntegerSpec | SecondsSpec | BooleanSpec | EnumSpec | HostSpec | PathSpec;

/** The spec shapes that fit a value type: a union of strings must be an enum listing exactly them. */
type SpecFor<T> = [T] extends [boolean]
  ? BooleanSpec
  : [T] extends [number]
    ? IntegerSpec | SecondsSpec
    : [T] extends [string]
      ? string extends T ? HostSpec | PathSpec : EnumSpec<T>
      : never;

/** Node timers overflow above 2^31-1 ms and then fire at once; longer durations are refused. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
/** Remaining Length 268,435,455 plus the largest fixed header. */
const MQTT_MAX_PACKET_SIZE = 268_435_460;

/**
 * One row per option, in the order --help and the docs show them. Typed as a mapped type over
 * ConfigValues, so adding a field to BrokerOptions without a row here does not compile.
 */
export const configTable: { readonly [K in ConfigKey]: SpecFor<ConfigValues[K]> } = {
  host: { type: 'host', doc: 'Interface to listen on; 0.0.0.0 (or ::) listens on every interface.' },
  port: { type: 'integer', min: 0, max: 65535, doc: 'TCP port to listen on; 0 picks a free port (the bound port is printed).' },
  persistence: { type: 'enum', values: ['sqlite', 'memory'], doc: 'Where sessions, subscriptions, retained messages and queues live: sqlite survives kill -9 (no acknowledged QoS 1/2 message is lost), memory does not.' },
  dataDir: { type: 'path', doc: 'Directory of the SQLite database (created if missing); one broker per directory.' },
  durability: { type: 'enum', values: ['process', 'power'], doc: 'How hard each commit is made durable: process survives a killed broker, power also fsyncs to survive power loss (slower).' },
  maxPacketSize: { type: 'integer', min: 2, max: MQTT_MAX_PACKET_SIZE, doc: 'Largest packet accepted from clients, in bytes (fixed header included).' },
  receiveMaximum: { type: 'integer', min: 1, max: 65535, doc: 'MQTT 5 Receive Maximum announced to clients: QoS 1/2 publishes a client may have unacknowledged.' },
  maxInflight: { type: 'integer', min: 1, max: 65535, doc: 'Upper bound on unacknowledged QoS 1/2 deliveries to any one client (also bounded by its Receive Maximum).' },
  topicAliasMaximum: { type: 'integer', min: 0, max: 65535, doc: 'MQTT 5 Topic Alias Maximum announced to clients; 0 disables inbound aliases.' },
  maxKeepalive: { type: 'integer', min: 0, max: 65535, doc: 'Keepalive ceiling in seconds; a client asking for more (or for 0) is told Server Keep Alive in v5. 0 = no ceiling.' },
  connectTimeout: { type: 'seconds', min: 0, max: MAX_TIMER_SECONDS, doc: 'Seconds a new connection may take to send CONNECT; 0 waits forever.' },
  maxQueuedMessages: { type: 'integer', min: 0, doc: 'Messages queued per session (offline or over its inflight window) before the drop policy applies.' },
  maxQueuedBytes: { type: 'integer', min: 0, doc: 'Payload bytes queued per session before the drop policy applies.' },
  queueDropPolicy: { type: 'enum', values: ['drop-new', 'drop-oldest'], doc: 'Which message a full session queue drops: the arriving one or the oldest queued.' },
  queueQos0: { type: 'boolean', doc: 'Queue QoS 0 messages for offline persistent sessions (MQTT allows either).' },
  writeBufferLimit: { type: 'integer', min: 1, doc: "Bytes buffered for one client's socket before it counts as a slow consumer." },
  slowConsumerTimeout: { type: 'seconds', min: 0, max: MAX_TIMER_SECONDS, doc: 'Seconds a slow consumer may stay over writeBufferLimit before it is disconnected; 0 never disconnects.' },
  sysInterval: { type: 'seconds', min: 0, max: MAX_TIMER_SECONDS, doc: 'Seconds between $SYS updates; 0 disables them.' },
  maxSessionExpiry: { type: 'integer', min: 0, max: 0xffffffff, doc: 'Longest session expiry granted, in seconds (4294967295 = no cap).' },
};

export const configKeys = Object.keys(configTable) as ConfigKey[];

export const defaultListen: ListenConfig = { host: '127.0.0.1', port: 1883 };
export const defaultStorage: StorageConfig = { persistence: 'sqlite', dataDir: 'mqtt-sim-data', durability: 'process' };
const nonBrokerKeys: ReadonlySet<string> = new Set(['host', 'port', 'persistence', 'dataDir', 'durability']);

/** The value each option has when neither the file nor a flag sets it. */
export const configDefaults: ConfigValues = {
  ...defaultListen,
  ...defaultStorage,
  ...(Object.fromEntries(
    configKeys.filter((k) => !nonBrokerKeys.has(k)).map((k) => [k, defaultBrokerOptions[k as ConfigurableOption]]),
  ) as Pick<BrokerOptions, ConfigurableOption>),
};

/** `maxPacketSize` → `max-packet-size`, the flag spelling. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** What the option accepts, as the error messages and --help say it. */
export function describeExpected(spec: OptionSpec): string {
  switch (spec.type) {
    case 'integer':
      return spec.max === undefined ? `an integer of ${spec.min} or more` : `an integer from ${spec.min} to ${spec.max}`;
    case 'seconds':
      return `a number of seconds from ${spec.min} to ${spec.max}`;
    case 'boolean':
      return 'true or false';
    case 'enum': {
      const quoted = spec.values.map((v) => JSON.stringify(v));
      return quoted.length === 2 ? `${quoted[0]} or ${quoted[1]}` : `one of ${quoted.join(', ')}`;
    }
    case 'host':
      return 'a host name or IP address';
    case 'path':
      return 'a directory path';
  }
}

// ---------------------------------------------------------------- problems

export interface ConfigProblem {
  /** Where the value came from: "broker.yaml:3" (file and line), "broker.yaml", or undefined for flags. */
  where?: string;
  /** The option as the user spelled it (a YAML key or a --flag); empty for problems with the whole file. */
  key: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.where !== undefined ? `${p.where}: ` : ''}${p.key !== '' ? `${p.key}: ` : ''}${p.message}`;
}

/** Invalid configuration: every problem found, each naming the file or flag, the key and what is expected. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(`invalid broker configuration:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

// ---------------------------------------------------------------- validation

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Checks one value against its row; flag values may be numeric strings ("08"), file values may not. */
function checkValue(spec: OptionSpec, raw: unknown, fromFlag: boolean): { value: unknown } | undefined {
  let v = raw;
  if (fromFlag && typeof v === 'string' && (spec.type === 'integer' || spec.type === 'seconds') && DECIMAL.test(v.trim())) {
    v = Number(v.trim());
  }
  switch (spec.type) {
    case 'integer':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= spec.min && (spec.max === undefined || v <= spec.max)
        ? { value: v } : undefined;
    case 'seconds':
      return typeof v === 'number' && Number.isFinite(v) && v >= spec.min && v <= spec.max ? { value: v } : undefined;
    case 'boolean':
      return typeof v === 'boolean' ? { value: v } : undefined;
    case 'enum':
      return typeof v === 'string' && spec.values.includes(v) ? { value: v } : undefined;
    case 'host':
      return typeof v === 'string' && v.length > 0 && !/\s/.test(v) ? { value: v } : undefined;
    case 'path':
      return typeof v === 'string' && v.length > 0 && !v.includes('\u0000') ? { value: v } : undefined;
  }
}

/** The offending value as the user would recognise it: strings quoted, short lists and maps inline. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null (an empty value)';
  if (value === undefined) return 'nothing';
  if (typeof value === 'string' || typeof value === 'object') {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (json !== undefined && json.length <= 60) return json;
    if (Array.isArray(value)) return 'a list';
    return typeof value === 'string' ? 'a long string' : 'a mapping';
  }
  return String(value);
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The option a mistyped or kebab-case/snake_case key most likely meant. */
export function suggestKey(key: string): ConfigKey | undefined {
  const wanted = normalizeName(key);
  let best: ConfigKey | undefined;
  let bestDistance = 3;
  for (const candidate of configKeys) {
    const d = editDistance(wanted, normalizeName(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function unknownKeyMessage(key: string): string {
  const suggestion = suggestKey(key);
  if (suggestion === undefined) return "unknown option; see 'mqtt-sim broker --help' or docs/broker-options.md for the list";
  if (normalizeName(suggestion) === normalizeName(key)) return `unknown option; keys are camelCase: write ${suggestion}`;
  return `unknown option; did you mean ${suggestion}?`;
}

export interface ValidationResult {
  values: Partial<ConfigValues>;
  problems: ConfigProblem[];
}

/**
 * Validates the options of one source. `lines` maps YAML keys to their line for file sources;
 * `file` undefined means the values came from flags (keys are reported as --flags).
 */
export function validateConfigValues(
  raw: Readonly<Record<string, unknown>>,
  source: { file?: string; lines?: ReadonlyMap<string, number> } = {},
): ValidationResult {
  const values: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  const fromFlag = source.file === undefined;
  for (const [key, value] of Object.entries(raw)) {
    const line = source.lines?.get(key);
    const where = source.file === undefined ? undefined : line === undefined ? source.file : `${source.file}:${line}`;
    const shownKey = fromFlag ? `--${flagName(key)}` : key;
    const at = (message: string): ConfigProblem => (where === undefined ? { key: shownKey, message } : { where, key: shownKey, message });
    if (!Object.hasOwn(configTable, key)) {
      problems.push(at(unknownKeyMessage(key)));
      continue;
    }
    const spec: OptionSpec = configTable[key as ConfigKey];
    const checked = checkValue(spec, value, fromFlag);
    // yargs hands a value-less, untyped flag over as `true` ("--port --host x").
    const got = fromFlag && value === true && spec.type !== 'boolean' ? 'no value' : describeValue(value);
    if (checked === undefined) problems.push(at(`expected ${describeExpected(spec)}, got ${got}`));
    else values[key] = checked.value;
  }
  return { values: values as Partial<ConfigValues>, problems };
}

// ---------------------------------------------------------------- YAML

/** Parses broker.yaml text into validated values; `file` names the file in messages. Throws ConfigError. */
export function parseConfigYaml(text: string, file: string): Partial<ConfigValues> {
  const { values, problems } = readConfigYaml(text, file);
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

function readConfigYaml(text: string, file: string): ValidationResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      values: {},
      problems: doc.errors.map((err) => {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        return { where: `${file}:${line}:${col}`, key: '', message: `invalid YAML: ${err.message}` };
      }),
    };
  }
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) return { values: {}, problems: [] };
  if (!isMap(contents)) {
    return {
      values: {},
      problems: [{ where: file, key: '', message: `expected a mapping of option names to values (e.g. "port: 1883"), got ${describeValue(safeToJs(() => doc.toJS()))}` }],
    };
  }
  const lines = new Map<string, number>();
  for (const pair of contents.items) {
    const keyNode = pair.key;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const offset = isScalar(keyNode) && keyNode.range !== undefined && keyNode.range !== null ? keyNode.range[0] : undefined;
    if (offset !== undefined) lines.set(key, lineCounter.linePos(offset).line);
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    return { values: {}, problems: [{ where: file, key: '', message: `invalid YAML: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  return validateConfigValues(raw as Record<string, unknown>, { file, lines });
}

function safeToJs(f: () => unknown): unknown {
  try {
    return f();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- loading and merging

export interface ConfigSources {
  /** Path of broker.yaml; as given, it names the file in messages. */
  file?: string;
  /** Values from flags, by camelCase key; undefined entries are ignored. */
  flags?: Readonly<Record<string, unknown>>;
  /** Reads the file (tests inject one); defaults to fs.readFileSync as UTF-8. */
  readFile?: (path: string) => string;
}

/**
 * Loads the file (if any) and the flags, validates both and merges them, flags winning.
 * Every problem from both sources is reported together in one ConfigError.
 */
export function loadBrokerConfig(sources: ConfigSources = {}): BrokerConfig {
  const problems: ConfigProblem[] = [];
  let fromFile: Partial<ConfigValues> = {};
  if (sources.file !== undefined) {
    const file = sources.file;
    const read = sources.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
    let text: string | undefined;
    try {
      text = read(file);
    } catch (err) {
      problems.push({ where: file, key: '', message: readErrorMessage(err) });
    }
    if (text !== undefined) {
      const result = readConfigYaml(text, file);
      fromFile = result.values;
      problems.push(...result.problems);
    }
  }
  const flagValues = Object.fromEntries(Object.entries(sources.flags ?? {}).filter(([, v]) => v !== undefined));
  const fromFlags = validateConfigValues(flagValues);
  problems.push(...fromFlags.problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return toBrokerConfig({ ...fromFile, ...fromFlags.values });
}

/** Splits merged values into the listener address (defaults filled in) and the options that were set. */
export function toBrokerConfig(values: Partial<ConfigValues>): BrokerConfig {
  const { host, port, persistence, dataDir, durability, ...options } = values;
  return {
    listen: { host: host ?? defaultListen.host, port: port ?? defaultListen.port },
    storage: {
      persistence: persistence ?? defaultStorage.persistence,
      dataDir: dataDir ?? defaultStorage.dataDir,
      durability: durability ?? defaultStorage.durability,
    },
    options,
  };
}

function readErrorMessage(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT': return 'cannot read the config file: it does not exist (check the --config path)';
    case 'EACCES': return 'cannot read the config file: permission denied (check its permissions)';
    case 'EISDIR': return 'cannot read the config file: it is a directory (give the path of a .yaml file)';
    default: return `cannot read the config file: ${err instanceof Error ? err.message : String(err)}`;
  }
}
