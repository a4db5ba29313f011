/**
 * `mqtt-sim broker`: runs the reference broker until SIGTERM or SIGINT; SIGHUP reloads the password and
 * ACL files. One flag per row of the configuration table (broker/config.ts), an optional broker.yaml beneath them.
 */
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Argv, CommandModule, Options } from 'yargs';
import { AuthReloadError } from '../../broker/auth/broker-auth.js';
import { createBroker as defaultCreateBroker, type Broker } from '../../broker/broker.js';
import {
  ConfigError, configKeys, configTable, describeDefault, describeExpected, flagName, listenerShortcutKeys, listenerShortcutTable,
  loadBrokerConfig, type BrokerConfig, type ConfigKey, type ListenConfig, type ListenerShortcutKey, type OptionSpec, type StorageConfig,
} from '../../broker/config.js';
import { describeListener, TlsSetupError, type ListenerSpec } from '../../broker/listeners/index.js';
import type { Logger, LogLevel } from '../../broker/log.js';
import type { BrokerOptions } from '../../broker/options.js';
import { MetricsListenError } from '../../broker/prometheus.js';
import { SqliteStore, StoreOpenError } from '../../broker/store/sqlite.js';
import type { Store } from '../../broker/store/types.js';
import type { CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';

export type BrokerCommandArgs = { config?: string } & { [K in ConfigKey | ListenerShortcutKey]?: unknown };

/**
 * The yargs option for one table row. Numbers stay untyped so "big" reaches our validator verbatim.
 * No `requiresArg`: yargs reports a missing value as an error object that runCli treats as internal
 * (exit 4, stack trace); our validator reports it instead ("got no value", exit 2).
 */
function flagOption(key: ConfigKey | ListenerShortcutKey, spec: OptionSpec): Options {
  const shortcut = Object.hasOwn(listenerShortcutTable, key);
  const listener = key === 'host' || key === 'port' || shortcut;
  const storage = key === 'persistence' || key === 'dataDir' || key === 'durability';
  const base: Options = {
    group: listener ? 'Listeners:' : storage ? 'Storage:' : 'Broker options (also settable in the config file):',
    defaultDescription: shortcut ? 'none' : describeDefault(key as ConfigKey),
  };
  switch (spec.type) {
    case 'boolean':
      return { ...base, type: 'boolean', describe: spec.doc };
    case 'host':
    case 'path':
    case 'url-path':
    case 'enum':
      return { ...base, type: 'string', describe: `${spec.doc} Accepts ${describeExpected(spec)}.` };
    case 'integer':
    case 'seconds':
      return { ...base, describe: `${spec.doc} Accepts ${describeExpected(spec)}.` };
  }
}

/** Declares --config and one flag per table row (exported for the parse test). */
export function brokerCommandBuilder(yargs: Argv): Argv<BrokerCommandArgs> {
  let y = yargs
    .usage('$0 broker [options]\n\nRuns the MQTT reference broker until SIGTERM or Ctrl-C. Prints "mqtt-sim broker listening on HOST:PORT" once it accepts connections, then one line per other listener (tls://HOST:PORT, ws://HOST:PORT/mqtt, wss://HOST:PORT/mqtt).')
    .option('config', {
      type: 'string',
      group: 'Configuration:',
      describe: 'YAML file of options: camelCase keys as the flags below (maxPacketSize for --max-packet-size); flags override it.',
    });
  for (const key of configKeys) y = y.option(flagName(key), flagOption(key, configTable[key]));
  for (const key of listenerShortcutKeys) y = y.option(flagName(key), flagOption(key, listenerShortcutTable[key]));
  return y
    .example('$0 broker --port 0', 'listen on a free port on 127.0.0.1 and print it')
    .example('$0 broker --config broker.yaml --host 0.0.0.0', 'every interface, options from broker.yaml')
    .example('$0 broker --tls-port 8883 --tls-cert server.pem --tls-key server-key.pem --ws-port 8080', 'also MQTT over TLS and over WebSocket (ws://HOST:8080/mqtt)') as Argv<BrokerCommandArgs>;
}

/** Turns parsed flags (and --config) into a broker configuration; invalid input is a usage error. */
export function configFromArgs(args: BrokerCommandArgs): BrokerConfig {
  const flags: Record<string, unknown> = {};
  for (const key of [...configKeys, ...listenerShortcutKeys]) if (args[key] !== undefined) flags[key] = args[key];
  if (args.config === '' || Array.isArray(args.config)) {
    const got = args.config === '' ? 'no value' : 'it more than once';
    throw new UserError(`--config: expected the path of one YAML file, got ${got}`, ExitCode.BadUsage);
  }
  try {
    return loadBrokerConfig({ ...(args.config !== undefined ? { file: args.config } : {}), flags });
  } catch (err) {
    if (err instanceof ConfigError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
  }
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A listen failure the user can fix, as a message naming the address and the fix; undefined for others.
 * `spec` is given for the listeners besides the plain TCP one of --host and --port.
 */
export function listenErrorMessage(err: unknown, listen: ListenConfig, spec?: ListenerSpec): string | undefined {
  const address = { address: listen.host, port: listen.port, family: '' };
  const where = `cannot listen on ${spec === undefined ? formatAddress(listen.host, listen.port) : describeListener(spec, address)}`;
  // Where the port and host of this listener are set.
  const portFlag = spec === undefined ? '--port' : spec.type === 'tcp' ? 'its port in the listeners list' : `--${spec.type}-port (or its port in the listeners list)`;
  const hostFlag = spec === undefined || spec.type !== 'tcp' ? '--host' : 'its host in the listeners list';
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'EADDRINUSE':
      return spec === undefined
        ? `${where}: port ${listen.port} is already in use; stop the process using it or choose another port with --port (--port 0 picks a free one)`
        : `${where}: port ${listen.port} is already in use; stop the process using it or choose another port with ${portFlag} (0 picks a free one)`;
    case 'EACCES':
      return spec === undefined
        ? `${where}: permission denied; ports below 1024 need elevated privileges, so choose --port 1024 or higher (or 0 for a free one)`
        : `${where}: permission denied; ports below 1024 need elevated privileges, so choose 1024 or higher with ${portFlag} (or 0 for a free one)`;
    case 'EADDRNOTAVAIL':
      return `${where}: ${listen.host} is not an address of this machine; choose one of its addresses with ${hostFlag} (0.0.0.0 for all)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${where}: the host name ${listen.host} does not resolve; check ${hostFlag}`;
    default:
      return undefined;
  }
}

/** The metrics endpoint could not listen: the message names its port and the flag that moves it. */
export function metricsListenErrorMessage(err: MetricsListenError): string {
  const where = `cannot serve metrics on ${formatAddress(err.host, err.port)}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `${where}: port ${err.port} is already in use; choose another port with --metrics-port`;
    case 'EACCES':
      return `${where}: permission denied; ports below 1024 need elevated privileges, so choose --metrics-port 1024 or higher`;
    default:
      return err.message;
  }
}

/**
 * The broker's log: one JSON line per record on stderr (stdout keeps the "listening on" lines), written
 * synchronously so the last records before a crash or a kill are not lost in a buffer.
 */
export function createCliLogger(level: LogLevel, write: (text: string) => void): Logger {
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime }, { write });
}

export interface ServeIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Aborting it closes the broker gracefully; serveBroker() resolves once it is closed. */
  signal: AbortSignal;
  /** Replaceable for tests. */
  createBroker?: (options: Partial<BrokerOptions>) => Broker;
  /** Called with the broker once it listens (the command hooks SIGHUP to it). */
  onListening?: (broker: Broker) => void;
}

/**
 * Starts the broker, prints the listening line with the bound port and resolves only after `signal`
 * aborted and the broker closed. Listen failures the user can fix become UserError (exit 2).
 */
export async function serveBroker(config: BrokerConfig, io: ServeIo): Promise<AddressInfo> {
  const logger = createCliLogger(config.options.logLevel ?? 'info', io.stderr);
  let onStoreError = (err: Error): void => {
    logger.error({ event: 'store.error', err }, err.message);
  };
  let onCommit: ((durationMs: number, writes: number) => void) | undefined;
  const store = openStore(config.storage, (err) => onStoreError(err), (ms, writes) => onCommit?.(ms, writes));
  let broker: Broker;
  try {
    const options = { ...config.options, logger };
    broker = (io.createBroker ?? defaultCreateBroker)(store === undefined ? options : { ...options, store });
  } catch (err) {
    store?.close();
    // An unreadable or invalid password or ACL file is the user's to fix.
    if (err instanceof ConfigError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
  }
  onStoreError = (err) => {
    // A failed commit acknowledged nothing; dropping every connection makes clients resend what
    // they still hold, so no message is lost — it waits until the store can commit again.
    logger.error({ event: 'store.error', err }, 'store commit failed, disconnecting clients so they resend');
    broker.dropAllConnections();
  };
  onCommit = (ms, writes) => broker.observeStoreCommit(ms, writes);
  const closeAll = async (): Promise<void> => {
    await broker.close();
    store?.close();
  };
  let address: AddressInfo;
  const others: string[] = [];
  let opening: ListenerSpec | undefined;
  try {
    address = await broker.listen(config.listen.port, config.listen.host);
    for (const spec of config.listeners ?? []) {
      opening = spec;
      others.push(describeListener(spec, await broker.listen(spec)));
    }
  } catch (err) {
    await closeAll();
    if (err instanceof MetricsListenError) throw new UserError(metricsListenErrorMessage(err), ExitCode.BadUsage);
    if (err instanceof TlsSetupError) throw new UserError(`cannot start the ${opening?.type ?? 'tls'} listener: ${err.message}`, ExitCode.BadUsage);
    const message = opening === undefined
      ? listenErrorMessage(err, config.listen)
      : listenErrorMessage(err, { host: opening.host ?? config.listen.host, port: opening.port }, opening);
    if (message !== undefined) throw new UserError(message, ExitCode.BadUsage);
    throw err;
  }
  io.stdout(`mqtt-sim broker listening on ${formatAddress(address.address, address.port)}\n`);
  for (const line of others) io.stdout(`mqtt-sim broker listening on ${line}\n`);
  const metrics = broker.metricsAddress();
  if (metrics !== null) io.stdout(`mqtt-sim broker metrics on http://${formatAddress(metrics.address, metrics.port)}/metrics\n`);
  io.onListening?.(broker);
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await closeAll();
  return address;
}

/** The durable store the configuration asks for (undefined: the broker's own memory store). */
function openStore(
  storage: StorageConfig, onError: (err: Error) => void, onCommit: (durationMs: number, writes: number) => void,
): Store | undefined {
  if (storage.persistence === 'memory') return undefined;
  try {
    return SqliteStore.open({ dataDir: storage.dataDir, durability: storage.durability, onError, onCommit });
  } catch (err) {
    // A data dir we cannot use is the user's to fix; never a silent fresh start over existing data.
    if (err instanceof StoreOpenError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
  }
}

/**
 * SIGHUP: re-reads the password file and the ACL and swaps them in without dropping connections. A file
 * that cannot be read or parsed changes nothing: the previous ones stay in force and stderr says why.
 * Returns whether the reload took effect.
 */
export function reloadBrokerAuth(broker: Broker, stderr: (text: string) => void): boolean {
  try {
    const result = broker.reloadAuth();
    const files: string[] = [];
    if (result.passwordFile !== undefined) files.push(`${result.passwordFile.path} (${result.passwordFile.users} users)`);
    if (result.aclFile !== undefined) files.push(`${result.aclFile.path} (${result.aclFile.rules} rules)`);
    stderr(files.length === 0
      ? 'mqtt-sim broker: SIGHUP received, no password or ACL file to reload\n'
      : `mqtt-sim broker: SIGHUP received, reloaded ${files.join(' and ')}\n`);
    return true;
  } catch (err) {
    const problems = err instanceof AuthReloadError ? err.message : `internal error, please report it: ${err instanceof Error ? err.stack : String(err)}`;
    stderr(`mqtt-sim broker: SIGHUP received, reload failed; the previous password file and ACL stay in force:\n${problems.split('\n').map((l) => `  ${l}`).join('\n')}\n`);
    return false;
  }
}

const shutdownSignals = ['SIGTERM', 'SIGINT'] as const;

/**
 * The command handler resolves only after shutdown, so runCli's promise (and the process) ends with
 * the broker. The first SIGTERM/SIGINT closes gracefully; our listeners are then removed, so a
 * second signal terminates at once (Node's default) if closing ever hangs.
 */
async function handler(args: BrokerCommandArgs & Partial<CommandContext>): Promise<void> {
  const config = configFromArgs(args);
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    for (const s of shutdownSignals) process.off(s, onSignal);
    io.stderr(`mqtt-sim broker: ${signal} received, closing connections\n`);
    stop.abort(signal);
  };
  for (const s of shutdownSignals) process.on(s, onSignal);
  let serving: Broker | undefined;
  const onHangup = (): void => {
    if (serving !== undefined) reloadBrokerAuth(serving, io.stderr);
  };
  process.on('SIGHUP', onHangup);
  try {
    await serveBroker(config, {
      stdout: io.stdout, stderr: io.stderr, signal: stop.signal, onListening: (broker) => (serving = broker),
    });
  } finally {
    for (const s of shutdownSignals) process.off(s, onSignal);
    process.off('SIGHUP', onHangup);
  }
}

export const brokerCommand: CommandModule<object, BrokerCommandArgs> = {
  command: 'broker',
  describe: 'Run the MQTT reference broker until SIGTERM or Ctrl-C',
  builder: brokerCommandBuilder,
  handler,
};
