/**
 * `mqtt-sim broker`: runs the reference broker until SIGTERM or SIGINT. One flag per row of the
 * configuration table (broker/config.ts), an optional broker.yaml beneath them.
 */
import type { AddressInfo } from 'node:net';
import type { Argv, CommandModule, Options } from 'yargs';
import { createBroker as defaultCreateBroker, type Broker } from '../../broker/broker.js';
import {
  ConfigError, configDefaults, configKeys, configTable, describeExpected, flagName, loadBrokerConfig,
  type BrokerConfig, type ConfigKey, type ListenConfig, type OptionSpec, type StorageConfig,
} from '../../broker/config.js';
import type { BrokerOptions } from '../../broker/options.js';
import { SqliteStore, StoreOpenError } from '../../broker/store/sqlite.js';
import type { Store } from '../../broker/store/types.js';
import type { CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';

export type BrokerCommandArgs = { config?: string } & { [K in ConfigKey]?: unknown };

/**
 * The yargs option for one table row. Numbers stay untyped so "big" reaches our validator verbatim.
 * No `requiresArg`: yargs reports a missing value as an error object that runCli treats as internal
 * (exit 4, stack trace); our validator reports it instead ("got no value", exit 2).
 */
function flagOption(key: ConfigKey, spec: OptionSpec): Options {
  const listener = key === 'host' || key === 'port';
  const storage = key === 'persistence' || key === 'dataDir' || key === 'durability';
  const base: Options = {
    group: listener ? 'Listener:' : storage ? 'Storage:' : 'Broker options (also settable in the config file):',
    defaultDescription: String(configDefaults[key]),
  };
  switch (spec.type) {
    case 'boolean':
      return { ...base, type: 'boolean', describe: spec.doc };
    case 'host':
    case 'path':
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
    .usage('$0 broker [options]\n\nRuns the MQTT reference broker until SIGTERM or Ctrl-C. Prints "mqtt-sim broker listening on HOST:PORT" once it accepts connections.')
    .option('config', {
      type: 'string',
      group: 'Configuration:',
      describe: 'YAML file of options: camelCase keys as the flags below (maxPacketSize for --max-packet-size); flags override it.',
    });
  for (const key of configKeys) y = y.option(flagName(key), flagOption(key, configTable[key]));
  return y
    .example('$0 broker --port 0', 'listen on a free port on 127.0.0.1 and print it')
    .example('$0 broker --config broker.yaml --host 0.0.0.0', 'every interface, options from broker.yaml') as Argv<BrokerCommandArgs>;
}

/** Turns parsed flags (and --config) into a broker configuration; invalid input is a usage error. */
export function configFromArgs(args: BrokerCommandArgs): BrokerConfig {
  const flags: Record<string, unknown> = {};
  for (const key of configKeys) if (args[key] !== undefined) flags[key] = args[key];
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

/** A listen failure the user can fix, as a message naming the address and the fix; undefined for others. */
export function listenErrorMessage(err: unknown, listen: ListenConfig): string | undefined {
  const where = `cannot listen on ${formatAddress(listen.host, listen.port)}`;
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'EADDRINUSE':
      return `${where}: port ${listen.port} is already in use; stop the process using it or choose another port with --port (--port 0 picks a free one)`;
    case 'EACCES':
      return `${where}: permission denied; ports below 1024 need elevated privileges, so choose --port 1024 or higher (or 0 for a free one)`;
    case 'EADDRNOTAVAIL':
      return `${where}: ${listen.host} is not an address of this machine; choose one of its addresses with --host (0.0.0.0 for all)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${where}: the host name ${listen.host} does not resolve; check --host`;
    default:
      return undefined;
  }
}

export interface ServeIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Aborting it closes the broker gracefully; serveBroker() resolves once it is closed. */
  signal: AbortSignal;
  /** Replaceable for tests. */
  createBroker?: (options: Partial<BrokerOptions>) => Broker;
}

/**
 * Starts the broker, prints the listening line with the bound port and resolves only after `signal`
 * aborted and the broker closed. Listen failures the user can fix become UserError (exit 2).
 */
export async function serveBroker(config: BrokerConfig, io: ServeIo): Promise<AddressInfo> {
  let onStoreError = (err: Error): void => {
    io.stderr(`mqtt-sim broker: ${err.message}\n`);
  };
  const store = openStore(config.storage, (err) => onStoreError(err));
  let broker: Broker;
  try {
    broker = (io.createBroker ?? defaultCreateBroker)(store === undefined ? config.options : { ...config.options, store });
  } catch (err) {
    store?.close();
    throw err;
  }
  onStoreError = (err) => {
    // A failed commit acknowledged nothing; dropping every connection makes clients resend what
    // they still hold, so no message is lost — it waits until the store can commit again.
    io.stderr(`mqtt-sim broker: store commit failed, disconnecting clients so they resend: ${err.message}\n`);
    broker.dropAllConnections();
  };
  const closeAll = async (): Promise<void> => {
    await broker.close();
    store?.close();
  };
  let address: AddressInfo;
  try {
    address = await broker.listen(config.listen.port, config.listen.host);
  } catch (err) {
    await closeAll();
    const message = listenErrorMessage(err, config.listen);
    if (message !== undefined) throw new UserError(message, ExitCode.BadUsage);
    throw err;
  }
  io.stdout(`mqtt-sim broker listening on ${formatAddress(address.address, address.port)}\n`);
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await closeAll();
  return address;
}

/** The durable store the configuration asks for (undefined: the broker's own memory store). */
function openStore(storage: StorageConfig, onError: (err: Error) => void): Store | undefined {
  if (storage.persistence === 'memory') return undefined;
  try {
    return SqliteStore.open({ dataDir: storage.dataDir, durability: storage.durability, onError });
  } catch (err) {
    // A data dir we cannot use is the user's to fix; never a silent fresh start over existing data.
    if (err instanceof StoreOpenError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
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
  try {
    await serveBroker(config, { stdout: io.stdout, stderr: io.stderr, signal: stop.signal });
  } finally {
    for (const s of shutdownSignals) process.off(s, onSignal);
  }
}

export const brokerCommand: CommandModule<object, BrokerCommandArgs> = {
  command: 'broker',
  describe: 'Run the MQTT reference broker until SIGTERM or Ctrl-C',
  builder: brokerCommandBuilder,
  handler,
};
