/**
 * Broker configuration from a YAML file (broker.yaml) and/or command-line flags, validated against
 * one declarative table. The table is the single source for validation, the `mqtt-sim broker` flags
 * and docs/broker-options.md.
 *
 * YAML keys are camelCase, exactly the BrokerOptions field names, plus `host` and `port` for the
 * listener. Durations are plain numbers of seconds. Flags are the kebab-case forms of the same names
 * (`maxPacketSize` → `--max-packet-size`) and override the file.
 */
import { closestMatch, editDistance } from '../common/edit-distance.js';
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { ListenerSpec, ListenerType, TlsOptions } from './listeners/types.js';
import { checkTlsOptions } from './listeners/tls.js';
import { logLevels } from './log.js';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';

/** BrokerOptions a user can set; authenticate, store and clock are for code, not configuration. */
export type ConfigurableOption = Exclude<keyof BrokerOptions, 'authenticate' | 'store' | 'clock' | 'logger'>;

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
  /** Listeners besides the plain TCP one (broker.yaml `listeners`, --tls-port, --ws-port, --wss-port), PEM files read; absent when none. */
  listeners?: ListenerSpec[];
  storage: StorageConfig;
  /** Only the options the user set; createBroker() fills in the rest from defaultBrokerOptions. */
  options: Partial<BrokerOptions>;
}

interface SpecBase {
  /** One sentence for --help and the docs. */
  doc: string;
  /** Shown as the default in --help and the docs when the option has no default value (it stays unset). */
  unset?: string;
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
  /** The path names a file (messages say "a file path"); otherwise a directory. */
  file?: boolean;
}
/** The path part of a URL (a WebSocket endpoint). */
export interface UrlPathSpec extends SpecBase {
  type: 'url-path';
}
export type OptionSpec = IntegerSpec | SecondsSpec | BooleanSpec | EnumSpec | HostSpec | PathSpec | UrlPathSpec;

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
export const configTable: { readonly [K in ConfigKey]: SpecFor<Exclude<ConfigValues[K], undefined>> } = {
  host: { type: 'host', doc: 'Interface to listen on; 0.0.0.0 (or ::) listens on every interface.' },
  port: { type: 'integer', min: 0, max: 65535, doc: 'TCP port to listen on; 0 picks a free port (the bound port is printed).' },
  persistence: { type: 'enum', values: ['sqlite', 'memory'], doc: 'Where sessions, subscriptions, retained messages and queues live: sqlite survives kill -9 (no acknowledged QoS 1/2 message is lost), memory does not.' },
  dataDir: { type: 'path', doc: 'Directory of the SQLite database (created if missing); one broker per directory.' },
  durability: { type: 'enum', values: ['process', 'power'], doc: 'How hard each commit is made durable: process survives a killed broker, power also fsyncs to survive power loss (slower).' },
  maxPacketSize: { type: 'integer', min: 2, max: MQTT_MAX_PACKET_SIZE, doc: 'Largest packet accepted from clients, in bytes (fixed header included).' },
  receiveMaximum: { type: 'integer', min: 1, max: 65535, doc: 'MQTT 5 Receive Maximum announced to clients: QoS 1/2 publishes a client may have unacknowledged.' },
  maxInflight: { type: 'integer', min: 1, max: 65535, doc: 'Upper bound on unacknowledged QoS 1/2 deliveries to any one client (also bounded by its Receive Maximum).' },
  topicAliasMaximum: { type: 'integer', min: 0, max: 65535, doc: 'MQTT 5 Topic Alias Maximum announced to clients; 0 disables inbound aliases.' },
  maxKeepalive: { type: 'integer', min: 0, max: 65535, doc: 'Keepalive ceiling in seconds for MQTT 5 clients: one asking for more (or for 0) is told Server Keep Alive; 3.x clients cannot be told and keep their own. 0 = no ceiling.' },
  connectTimeout: { type: 'seconds', min: 0, max: MAX_TIMER_SECONDS, doc: 'Seconds a new connection may take to send CONNECT; 0 waits forever.' },
  maxQueuedMessages: { type: 'integer', min: 0, doc: 'Messages queued per session (offline or over its inflight window) before the drop policy applies.' },
  maxQueuedBytes: { type: 'integer', min: 0, doc: 'Payload bytes queued per session before the drop policy applies.' },
  queueDropPolicy: { type: 'enum', values: ['drop-new', 'drop-oldest'], doc: 'Which message a full session queue drops: the arriving one or the oldest queued.' },
  queueQos0: { type: 'boolean', doc: 'Queue QoS 0 messages for offline persistent sessions (MQTT allows either).' },
  writeBufferLimit: { type: 'integer', min: 1, doc: "Bytes buffered for one client's socket before it counts as a slow consumer." },
  slowConsumerTimeout: { type: 'seconds', min: 0, max: MAX_TIMER_SECONDS, doc: 'Seconds a slow consumer may stay over writeBufferLimit before it is disconnected; 0 never disconnects.' },
  publisherBackpressure: { type: 'integer', min: 0, doc: 'Queued messages for one connected subscriber at which the publishers feeding it are paused until it drains to half; 0 never pauses them.' },
  sysInterval: { type: 'seconds', min: 0, max: MAX_TIMER_SECONDS, doc: 'Seconds between $SYS updates; 0 disables them.' },
  maxSessionExpiry: { type: 'integer', min: 0, max: 0xffffffff, doc: 'Longest session expiry granted, in seconds (4294967295 = no cap).' },
  useCommonNameAsUsername: { type: 'boolean', doc: 'A client with a verified certificate (tlsRequireClientCert) connects as its subject CN: the CN replaces the user name of CONNECT for authentication and ACLs. Clients without a certificate keep theirs.' },
  maxConnections: { type: 'integer', min: 0, doc: 'Open connections (counting those that have not sent CONNECT yet) beyond which a new one is closed on accept, before it sends anything; 0 = no limit.' },
  publishRateLimit: { type: 'integer', min: 0, doc: 'PUBLISH packets per second one connection may send (token bucket, bursts of one second\'s worth); a faster client is disconnected (MQTT 5: DISCONNECT 0x96). 0 = no limit.' },
  metricsPort: { type: 'integer', min: 0, max: 65535, doc: 'Port of the Prometheus endpoint http://HOST:PORT/metrics, on the broker host; 0 = off.' },
  logLevel: { type: 'enum', values: logLevels, doc: 'Least severe level of the JSON log records written to stderr (client connects and disconnects are info).' },
  passwordFile: { type: 'path', file: true, unset: 'none', doc: 'Password file of user:$scrypt$... lines (docs/security.md, made with mqtt-sim passwd); clients with a user name must give its password. Reloaded on SIGHUP.' },
  aclFile: { type: 'path', file: true, unset: 'none', doc: 'ACL file of read/write rules per user (docs/security.md); without one every client may publish and subscribe to everything. Reloaded on SIGHUP.' },
  allowAnonymous: { type: 'boolean', unset: 'true without --password-file, false with it', doc: 'Whether clients without a user name may connect (refused: CONNACK 5 in 3.1.1, 0x87 in 5.0).' },
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
    configKeys
      .filter((k) => !nonBrokerKeys.has(k) && defaultBrokerOptions[k as ConfigurableOption] !== undefined)
      .map((k) => [k, defaultBrokerOptions[k as ConfigurableOption]]),
  ) as Pick<BrokerOptions, ConfigurableOption>),
};

/** The default as --help and the docs show it: the value, or what an unset option means. */
export function describeDefault(key: ConfigKey): string {
  const value = configDefaults[key];
  return value === undefined ? (configTable[key].unset ?? 'unset') : String(value);
}

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
      return spec.file === true ? 'a file path' : 'a directory path';
    case 'url-path':
      return 'a URL path starting with /';
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
    case 'url-path':
      return typeof v === 'string' && /^\/[\x21-\x7e]*$/.test(v) && !/[?#]/.test(v) ? { value: v } : undefined;
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

/** The option a mistyped or kebab-case/snake_case key most likely meant. */
export function suggestKey(key: string): ConfigKey | undefined {
  return closestMatch(key, configKeys, 2, normalizeName);
}

function unknownKeyMessage(key: string): string {
  const suggestion = suggestKey(key);
  if (suggestion === undefined) return "unknown option; see 'mqtt-sim broker --help' or docs/broker-options.md for the list";
  if (normalizeName(suggestion) === normalizeName(key)) return `unknown option; keys are camelCase: write ${suggestion}`;
  return `unknown option; did you mean ${suggestion}?`;
}

export interface ValidationResult {
  values: Partial<ConfigValues>;
  /** The listener keys (listeners, tlsPort, ...), kept apart: they become BrokerConfig.listeners, not options. */
  listenerSettings?: ListenerSettings;
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
  const listenerSettings: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  const fromFlag = source.file === undefined;
  const place = (key: string, message: string): ConfigProblem => placeProblem(source, key, message);
  for (const [key, value] of Object.entries(raw)) {
    const line = source.lines?.get(key);
    const where = source.file === undefined ? undefined : line === undefined ? source.file : `${source.file}:${line}`;
    const shownKey = fromFlag ? `--${flagName(key)}` : key;
    const at = (message: string): ConfigProblem => (where === undefined ? { key: shownKey, message } : { where, key: shownKey, message });
    if (key === 'listeners' && !fromFlag) {
      const checked = validateListenerList(value, place);
      problems.push(...checked.problems);
      listenerSettings[key] = checked.listeners;
      continue;
    }
    if (!Object.hasOwn(configTable, key) && !(isListenerSettingKey(key) && key !== 'listeners')) {
      problems.push(at(unknownKeyMessage(key)));
      continue;
    }
    const shortcut = Object.hasOwn(listenerShortcutTable, key);
    const spec: OptionSpec = shortcut ? listenerShortcutTable[key as ListenerShortcutKey] : configTable[key as ConfigKey];
    const checked = checkValue(spec, value, fromFlag);
    // yargs hands a value-less, untyped flag over as `true` ("--port --host x").
    const got = fromFlag && value === true && spec.type !== 'boolean' ? 'no value' : describeValue(value);
    if (checked === undefined) problems.push(at(`expected ${describeExpected(spec)}, got ${got}`));
    else (shortcut ? listenerSettings : values)[key] = checked.value;
  }
  return {
    values: values as Partial<ConfigValues>,
    ...(Object.keys(listenerSettings).length > 0 ? { listenerSettings: listenerSettings as ListenerSettings } : {}),
    problems,
  };
}

/** A problem with `key` of a source: its file and line (or the nearest enclosing key's line), or a --flag. */
function placeProblem(source: { file?: string; lines?: ReadonlyMap<string, number> }, key: string, message: string): ConfigProblem {
  if (source.file === undefined) return { key: `--${flagName(key)}`, message };
  // "listeners[1].port" → "listeners[1]" → "listeners": a value without a line of its own is placed by its parent.
  let k = key;
  let line = source.lines?.get(k);
  while (line === undefined) {
    const parent = k.replace(/(\.[^.[\]]*|\[\d+\])$/, '');
    if (parent === k) break;
    k = parent;
    line = source.lines?.get(k);
  }
  return { where: line === undefined ? source.file : `${source.file}:${line}`, key, message };
}

// ---------------------------------------------------------------- YAML

/**
 * Parses broker.yaml text into validated values (listener keys included, TLS files not read); `file`
 * names the file in messages. Throws ConfigError.
 */
export function parseConfigYaml(text: string, file: string): Partial<ConfigValues> & ListenerSettings {
  const { values, listenerSettings, problems } = readConfigYaml(text, file);
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...values, ...listenerSettings };
}

function readConfigYaml(text: string, file: string): ValidationResult & { lines?: ReadonlyMap<string, number> } {
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
    if (key === 'listeners') recordListenerLines(pair.value, (k, at) => lines.set(k, lineCounter.linePos(at).line));
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    return { values: {}, problems: [{ where: file, key: '', message: `invalid YAML: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  return { ...validateConfigValues(raw as Record<string, unknown>, { file, lines }), lines };
}

/** The line of each `listeners` entry ("listeners[1]") and of each of its fields ("listeners[1].port"). */
function recordListenerLines(node: unknown, record: (key: string, offset: number) => void): void {
  if (!isSeq(node)) return;
  node.items.forEach((item, i) => {
    const itemRange = (item as { range?: [number, number, number] | null } | null)?.range;
    if (itemRange) record(`listeners[${i}]`, itemRange[0]);
    if (!isMap(item)) return;
    for (const pair of item.items) {
      if (isScalar(pair.key) && pair.key.range) record(`listeners[${i}].${String(pair.key.value)}`, pair.key.range[0]);
    }
  });
}

function safeToJs(f: () => unknown): unknown {
  try {
    return f();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- listeners

/**
 * Listeners besides the plain TCP one on host:port, which always runs. The shortcut keys (flags, and
 * top-level keys of broker.yaml) add one TLS, WebSocket and secure WebSocket listener on `host`; the
 * `listeners` list of broker.yaml adds any number, each entry checked against listenerFieldTable.
 * loadBrokerConfig reads the certificate files.
 */
export interface ListenerShortcuts {
  tlsPort?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsRequireClientCert?: boolean;
  wsPort?: number;
  wssPort?: number;
}
export type ListenerShortcutKey = keyof ListenerShortcuts;

/** One entry of the broker.yaml `listeners` list; the TLS material as file paths. */
export interface ListenerConfig {
  type: ListenerType;
  host?: string;
  port: number;
  path?: string;
  cert?: string;
  key?: string;
  ca?: string;
  requireClientCert?: boolean;
}

/** The listener settings of one source (the file or the flags). */
export interface ListenerSettings extends ListenerShortcuts {
  listeners?: ListenerConfig[];
}

const PORT = { type: 'integer', min: 0, max: 65535 } as const;

/** One flag (and top-level YAML key) per row, in the order --help and the docs show them. */
export const listenerShortcutTable: { readonly [K in ListenerShortcutKey]-?: OptionSpec } = {
  tlsPort: { ...PORT, doc: 'Adds an MQTT over TLS listener on host at this port (8883 is usual); needs tlsCert and tlsKey.' },
  tlsCert: { type: 'path', file: true, doc: 'PEM file of the server certificate (then any intermediate certificates) of the TLS and WSS listeners.' },
  tlsKey: { type: 'path', file: true, doc: 'PEM file of the private key of tlsCert.' },
  tlsCa: { type: 'path', file: true, doc: 'PEM file of the CA certificate(s) that sign client certificates; needed by tlsRequireClientCert.' },
  tlsRequireClientCert: { type: 'boolean', doc: 'Mutual TLS on the TLS and WSS listeners: the handshake fails unless the client presents a certificate signed by tlsCa.' },
  wsPort: { ...PORT, doc: 'Adds an MQTT over WebSocket listener on host at this port (path /mqtt).' },
  wssPort: { ...PORT, doc: 'Adds an MQTT over secure WebSocket listener on host at this port (path /mqtt), with tlsCert, tlsKey, tlsCa and tlsRequireClientCert.' },
};
export const listenerShortcutKeys = Object.keys(listenerShortcutTable) as ListenerShortcutKey[];

/** The fields of one `listeners` entry. */
export const listenerFieldTable: { readonly [K in keyof ListenerConfig]-?: OptionSpec } = {
  type: { type: 'enum', values: ['tcp', 'tls', 'ws', 'wss'], doc: 'Required: tcp (plain MQTT), tls (MQTT over TLS), ws (MQTT over WebSocket) or wss (MQTT over secure WebSocket).' },
  host: { type: 'host', doc: 'Interface to listen on; the top-level host when omitted.' },
  port: { ...PORT, doc: 'Required: the port; 0 picks a free one (the bound port is printed).' },
  path: { type: 'url-path', doc: 'ws and wss only: the HTTP path of the WebSocket endpoint; /mqtt when omitted.' },
  cert: { type: 'path', file: true, doc: 'Required for tls and wss: PEM file of the server certificate (then any intermediate certificates).' },
  key: { type: 'path', file: true, doc: 'Required for tls and wss: PEM file of the private key of cert.' },
  ca: { type: 'path', file: true, doc: 'tls and wss only: PEM file of the CA certificate(s) that sign client certificates; needed by requireClientCert.' },
  requireClientCert: { type: 'boolean', doc: 'tls and wss only: mutual TLS; the handshake fails unless the client presents a certificate signed by ca. false when omitted.' },
};
const listenerFields = Object.keys(listenerFieldTable) as Array<keyof ListenerConfig>;
const tlsFields = ['cert', 'key', 'ca', 'requireClientCert'] as const;

function isListenerSettingKey(key: string): key is keyof ListenerSettings {
  return key === 'listeners' || Object.hasOwn(listenerShortcutTable, key);
}

function unknownFieldMessage(field: string): string {
  const wanted = normalizeName(field);
  const near = listenerFields.find((f) => editDistance(wanted, normalizeName(f)) < 3);
  if (near !== undefined) return `unknown listener field; did you mean ${near}?`;
  return `unknown listener field; a listener takes ${listenerFields.join(', ')}`;
}

/** Places a problem: `key` as the user wrote it ("listeners[1].port", "tlsCert", "--tls-cert"). */
type Place = (key: string, message: string) => ConfigProblem;

/** The broker.yaml `listeners` list, each entry checked on its own. */
function validateListenerList(raw: unknown, place: Place): { listeners: ListenerConfig[]; problems: ConfigProblem[] } {
  if (!Array.isArray(raw)) {
    return {
      listeners: [],
      problems: [place('listeners', `expected a list of listeners (e.g. "- { type: ws, port: 8080 }"), got ${describeValue(raw)}`)],
    };
  }
  const listeners: ListenerConfig[] = [];
  const problems: ConfigProblem[] = [];
  raw.forEach((entry: unknown, i) => {
    const name = `listeners[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(place(name, `expected a mapping with type and port (e.g. "{ type: ws, port: 8080 }"), got ${describeValue(entry)}`));
      return;
    }
    const before = problems.length;
    const fields: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(entry)) {
      if (!Object.hasOwn(listenerFieldTable, field)) {
        problems.push(place(`${name}.${field}`, unknownFieldMessage(field)));
        continue;
      }
      const spec = listenerFieldTable[field as keyof ListenerConfig];
      const checked = checkValue(spec, value, false);
      if (checked === undefined) problems.push(place(`${name}.${field}`, `expected ${describeExpected(spec)}, got ${describeValue(value)}`));
      else fields[field] = checked.value;
    }
    for (const required of ['type', 'port'] as const) {
      if (!Object.hasOwn(entry, required)) problems.push(place(name, `missing ${required} (${describeExpected(listenerFieldTable[required])})`));
    }
    if (problems.length > before) return;
    const listener = fields as unknown as ListenerConfig;
    const secure = listener.type === 'tls' || listener.type === 'wss';
    for (const field of tlsFields) {
      if (!secure && listener[field] !== undefined) problems.push(place(`${name}.${field}`, `only tls and wss listeners take ${field}; this one is ${listener.type}`));
    }
    if (listener.path !== undefined && listener.type !== 'ws' && listener.type !== 'wss') {
      problems.push(place(`${name}.path`, `only ws and wss listeners take path; this one is ${listener.type}`));
    }
    if (secure && (listener.cert === undefined || listener.key === undefined)) {
      problems.push(place(name, `a ${listener.type} listener needs cert and key (PEM files)`));
    }
    if (secure && listener.requireClientCert === true && listener.ca === undefined) {
      problems.push(place(`${name}.requireClientCert`, 'needs ca, the PEM file of the CA that signs client certificates'));
    }
    listeners.push(listener);
  });
  return { listeners, problems };
}

/** A listener to open, with the key each of its fields was set by (for problems with the files). */
interface PlannedListener {
  config: ListenerConfig;
  /** How the user set a field of this listener, or the listener itself for fields it lacks. */
  keyOf: (field: keyof ListenerConfig) => string;
}

/**
 * The shortcut listeners (tls, ws, wss on `host`) and their cross-checks; `keyOf` spells a shortcut
 * key as its source does (a --flag or a YAML key) and `place` locates it.
 */
function planShortcutListeners(
  s: ListenerShortcuts, keyOf: (key: ListenerShortcutKey, like?: ListenerShortcutKey) => string, place: Place,
): { planned: PlannedListener[]; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const planned: PlannedListener[] = [];
  const secureKeys = (['tlsPort', 'wssPort'] as const).filter((k) => s[k] !== undefined);
  for (const portKey of secureKeys) {
    if (s.tlsCert === undefined || s.tlsKey === undefined) {
      problems.push(place(portKey, `a TLS listener needs a certificate and key: set ${keyOf('tlsCert', portKey)} and ${keyOf('tlsKey', portKey)} (PEM files)`));
    }
  }
  if (secureKeys.length > 0 && s.tlsRequireClientCert === true && s.tlsCa === undefined) {
    problems.push(place('tlsRequireClientCert', `needs ${keyOf('tlsCa', 'tlsRequireClientCert')}, the PEM file of the CA that signs client certificates`));
  }
  const unused = (['tlsCert', 'tlsKey', 'tlsCa', 'tlsRequireClientCert'] as const).find((k) => s[k] !== undefined);
  if (secureKeys.length === 0 && unused !== undefined) {
    problems.push(place(unused, `applies to the listeners of ${keyOf('tlsPort', unused)} and ${keyOf('wssPort', unused)}, and neither is set`));
  }
  if (problems.length > 0) return { planned, problems };
  const tlsKeys: Partial<Record<keyof ListenerConfig, ListenerShortcutKey>> = { cert: 'tlsCert', key: 'tlsKey', ca: 'tlsCa', requireClientCert: 'tlsRequireClientCert' };
  const tlsPart = {
    cert: s.tlsCert!,
    key: s.tlsKey!,
    ...(s.tlsCa !== undefined ? { ca: s.tlsCa } : {}),
    ...(s.tlsRequireClientCert !== undefined ? { requireClientCert: s.tlsRequireClientCert } : {}),
  };
  const shortcut = (config: ListenerConfig, portKey: ListenerShortcutKey, withTls: boolean): PlannedListener => ({
    config: withTls ? { ...config, ...tlsPart } : config,
    keyOf: (field) => keyOf((field === 'port' ? portKey : tlsKeys[field]) ?? portKey),
  });
  if (s.tlsPort !== undefined) planned.push(shortcut({ type: 'tls', port: s.tlsPort }, 'tlsPort', true));
  if (s.wsPort !== undefined) planned.push(shortcut({ type: 'ws', port: s.wsPort }, 'wsPort', false));
  if (s.wssPort !== undefined) planned.push(shortcut({ type: 'wss', port: s.wssPort }, 'wssPort', true));
  return { planned, problems };
}

function fileReadMessage(path: string, err: unknown): string {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT': return `cannot read ${path}: it does not exist`;
    case 'EACCES': return `cannot read ${path}: permission denied (check its permissions)`;
    case 'EISDIR': return `cannot read ${path}: it is a directory (give the path of a PEM file)`;
    default: return `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Reads the PEM files of the planned listeners and checks that the certificate, key and CA are usable. */
function openListenerSpecs(
  planned: readonly PlannedListener[], host: string, read: (path: string) => string, place: Place,
): { specs: ListenerSpec[]; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const specs: ListenerSpec[] = [];
  const texts = new Map<string, string | undefined>();
  const readPem = (p: PlannedListener, field: 'cert' | 'key' | 'ca'): string | undefined => {
    const path = p.config[field];
    if (path === undefined) return undefined;
    if (!texts.has(path)) {
      try {
        texts.set(path, read(path));
      } catch (err) {
        texts.set(path, undefined);
        problems.push(place(p.keyOf(field), fileReadMessage(path, err)));
      }
    }
    return texts.get(path);
  };
  for (const p of planned) {
    const { type, port, path } = p.config;
    const at = { host: p.config.host ?? host, port };
    if (type === 'tcp') specs.push({ type, ...at });
    if (type === 'ws') specs.push({ type, ...at, ...(path !== undefined ? { path } : {}) });
    if (type !== 'tls' && type !== 'wss') continue;
    const before = problems.length;
    const cert = readPem(p, 'cert');
    const key = readPem(p, 'key');
    const ca = readPem(p, 'ca');
    if (problems.length > before || cert === undefined || key === undefined) continue;
    const tlsOptions: TlsOptions = {
      cert, key, ...(ca !== undefined ? { ca } : {}), ...(p.config.requireClientCert !== undefined ? { requireClientCert: p.config.requireClientCert } : {}),
    };
    try {
      checkTlsOptions(tlsOptions);
    } catch (err) {
      const files = `${p.config.cert} with key ${p.config.key}${p.config.ca !== undefined ? ` and CA ${p.config.ca}` : ''}`;
      problems.push(place(p.keyOf('cert'), `cannot use ${files}: ${err instanceof Error ? err.message : String(err)}`));
      continue;
    }
    specs.push(type === 'tls' ? { type, ...at, ...tlsOptions } : { type, ...at, ...(path !== undefined ? { path } : {}), ...tlsOptions });
  }
  return { specs, problems };
}

/** Where each listener setting came from, to plan the listeners and place their problems. */
interface ListenerSources {
  fromFile: ListenerSettings;
  fromFlags: ListenerShortcuts;
  /** Places a problem with a key of the file (with its line when known). */
  placeInFile: Place;
  host: string;
  read: (path: string) => string;
}

/**
 * Every listener besides the plain TCP one: the file's `listeners` list, then the shortcut TLS, WS
 * and WSS listeners (flags over the file). The PEM files are read only when nothing else is wrong,
 * so a mistyped key is not reported again as an unreadable file.
 */
function configureListeners(sources: ListenerSources, earlier: readonly ConfigProblem[]): { specs: ListenerSpec[]; problems: ConfigProblem[] } {
  const { listeners: fileList = [], ...fileShortcuts } = sources.fromFile;
  const setByFlag = (key: ListenerShortcutKey): boolean => sources.fromFlags[key] !== undefined;
  // A key is spelled as the source that set it; one that is not set, as the source of `like` (the key a problem is about).
  const keyOf = (key: ListenerShortcutKey, like: ListenerShortcutKey = key): string =>
    setByFlag(key) || (fileShortcuts[key] === undefined && setByFlag(like)) ? `--${flagName(key)}` : key;
  const place: Place = (key, message) => {
    if (key.startsWith('--')) return { key, message };
    return sources.placeInFile(key, message);
  };
  // A shortcut with an invalid value was left out; checking the others against it would only add noise.
  const invalidShortcut = earlier.some((p) => listenerShortcutKeys.some((k) => p.key === k || p.key === `--${flagName(k)}`));
  if (invalidShortcut) return { specs: [], problems: [] };
  const shortcuts = planShortcutListeners({ ...fileShortcuts, ...sources.fromFlags }, keyOf, (key, message) => place(keyOf(key as ListenerShortcutKey), message));
  if (earlier.length > 0 || shortcuts.problems.length > 0) return { specs: [], problems: shortcuts.problems };
  const fromList: PlannedListener[] = fileList.map((config, i) => ({
    config,
    keyOf: (field) => (config[field] !== undefined ? `listeners[${i}].${field}` : `listeners[${i}]`),
  }));
  return openListenerSpecs([...fromList, ...shortcuts.planned], sources.host, sources.read, place);
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
  let fileListenerSettings: ListenerSettings = {};
  let fileLines: ReadonlyMap<string, number> | undefined;
  const read = sources.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  if (sources.file !== undefined) {
    const file = sources.file;
    let text: string | undefined;
    try {
      text = read(file);
    } catch (err) {
      problems.push({ where: file, key: '', message: readErrorMessage(err) });
    }
    if (text !== undefined) {
      const result = readConfigYaml(text, file);
      fromFile = result.values;
      fileListenerSettings = result.listenerSettings ?? {};
      fileLines = result.lines;
      problems.push(...result.problems);
    }
  }
  const flagValues = Object.fromEntries(Object.entries(sources.flags ?? {}).filter(([, v]) => v !== undefined));
  const fromFlags = validateConfigValues(flagValues);
  problems.push(...fromFlags.problems);
  const merged = { ...fromFile, ...fromFlags.values };
  const listeners = configureListeners({
    fromFile: fileListenerSettings,
    fromFlags: fromFlags.listenerSettings ?? {},
    placeInFile: (key, message) => placeProblem({ file: sources.file ?? 'broker.yaml', ...(fileLines !== undefined ? { lines: fileLines } : {}) }, key, message),
    host: merged.host ?? defaultListen.host,
    read,
  }, problems);
  problems.push(...listeners.problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const config = toBrokerConfig(merged);
  return listeners.specs.length > 0 ? { ...config, listeners: listeners.specs } : config;
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
