/**
 * `mqtt-sim proxy`: a standalone fault proxy. Every connection accepted on --listen reaches --upstream
 * through its own fault link (a network preset or a profile file), seeded by --seed and the connection's
 * index. Runs until SIGTERM or Ctrl-C. Exit codes: 0 closed on a signal, 2 bad flags or profile file.
 */
import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { parseDocument } from 'yaml';
import { describeProfile } from '../../simulator/faults/describe.js';
import { networkSpecProblems, parseNetworkSpec, unknownPresetMessage } from '../../simulator/faults/network-spec.js';
import { isPresetName, resolveProfile, type NetworkProfile } from '../../simulator/faults/profile.js';
import { startFaultProxy, type HostPort } from '../../simulator/faults/proxy.js';
import type { CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';
import { formatAddress } from './broker.js';

export interface ProxyArgs {
  listen: string;
  upstream?: string;
  profile?: string;
  'profile-file'?: string;
  seed: number;
}

export function proxyCommandBuilder(yargs: Argv): Argv<ProxyArgs> {
  return yargs
    .usage('$0 proxy --upstream HOST:PORT [--listen HOST:PORT] [--profile NAME | --profile-file FILE] [--seed N]\n\nA TCP proxy that puts every connection through an emulated network: latency, jitter, bandwidth, TCP stalls, segment slicing, and disconnects (reset, half-open, slow close). Prints "mqtt-sim proxy listening on HOST:PORT → upstream HOST:PORT" once it accepts connections; runs until SIGTERM or Ctrl-C. `mqtt-sim profiles` lists the presets.')
    .option('listen', { type: 'string', default: '127.0.0.1:1884', describe: 'Address to accept connections on (port 0: a free one, printed)' })
    .option('upstream', { type: 'string', describe: 'The broker (or any TCP server) to forward to, HOST:PORT' })
    .option('profile', { type: 'string', describe: 'Network preset (see mqtt-sim profiles)', defaultDescription: 'lan' })
    .option('profile-file', { type: 'string', describe: 'YAML file with one network, as under networks: in a scenario (e.g. { preset: cellular-3g, disconnects: { mtbf: 1m, downtime: 2s..10s } })' })
    .option('seed', { type: 'number', default: 1, describe: 'Seed of every random draw; connection n uses (seed, n)' })
    .example('$0 proxy --upstream 127.0.0.1:1883 --profile cellular-3g', 'clients connect to 127.0.0.1:1884 as if over 3G')
    .example('$0 proxy --listen 0.0.0.0:1884 --upstream broker:1883 --profile-file field.yaml --seed 7', 'a custom network, replayable') as Argv<ProxyArgs>;
}

/** `host:port`, `[v6]:port` or `:port` (127.0.0.1); the flag name goes into the message. */
export function parseHostPort(flag: string, value: unknown): HostPort {
  if (typeof value !== 'string' || value === '') throw new UserError(`--${flag}: expected HOST:PORT like 127.0.0.1:1883, got ${value === '' || value === undefined ? 'no value' : JSON.stringify(value)}`, ExitCode.BadUsage);
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !Number.isInteger(port) || port > 65535) {
    throw new UserError(`--${flag}: expected HOST:PORT like 127.0.0.1:1883 (port 0 to 65535), got ${JSON.stringify(value)}`, ExitCode.BadUsage);
  }
  const host = m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2]!);
  return { host, port };
}

function loadProfile(args: ProxyArgs): NetworkProfile {
  const file = args['profile-file'];
  if (file !== undefined && args.profile !== undefined) throw new UserError('give --profile or --profile-file, not both (a profile file can start from a preset: preset: cellular-3g)', ExitCode.BadUsage);
  if (file === undefined) {
    const name = args.profile ?? 'lan';
    if (typeof name !== 'string' || !isPresetName(name)) throw new UserError(`--profile: ${unknownPresetMessage(String(name))}`, ExitCode.BadUsage);
    return resolveProfile(name);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`--profile-file: cannot read ${file}${code === 'ENOENT' ? ': no such file' : code !== undefined ? ` (${code})` : ''}`, ExitCode.BadUsage);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new UserError(`--profile-file ${file}: YAML syntax error: ${doc.errors[0]!.message}`, ExitCode.BadUsage);
  const parsed = parseNetworkSpec(doc.toJS());
  if (!parsed.ok) throw new UserError(`--profile-file ${file} is not a valid network:\n${networkSpecProblems(parsed.issues).map((l) => `  ${l}`).join('\n')}`, ExitCode.BadUsage);
  return parsed.profile;
}

const shutdownSignals = ['SIGTERM', 'SIGINT'] as const;

/** Resolves once a signal closed the proxy. */
export async function proxyCommandHandler(args: ProxyArgs & Partial<CommandContext>): Promise<void> {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  const listen = parseHostPort('listen', args.listen);
  if (args.upstream === undefined) throw new UserError('--upstream: required; the broker to forward to, e.g. --upstream 127.0.0.1:1883', ExitCode.BadUsage);
  const upstream = parseHostPort('upstream', args.upstream);
  if (upstream.port === 0) throw new UserError('--upstream: port 0 is not a port to connect to; give the broker\'s port, e.g. 127.0.0.1:1883', ExitCode.BadUsage);
  if (!Number.isSafeInteger(args.seed) || args.seed < 0) throw new UserError(`--seed: expected a whole number of 0 or more, got ${String(args.seed)}`, ExitCode.BadUsage);
  const profile = loadProfile(args);

  let proxy;
  try {
    proxy = await startFaultProxy({
      listen,
      upstream,
      profile,
      seed: args.seed,
      onUpstreamError: (index, remote, err) => {
        const code = (err as NodeJS.ErrnoException).code ?? err.message;
        io.stderr(`mqtt-sim proxy: connection #${index} from ${remote}: upstream ${formatAddress(upstream.host, upstream.port)} unreachable (${code}); closed the client's connection\n`);
      },
    });
  } catch (err) {
    const where = `cannot listen on ${formatAddress(listen.host, listen.port)}`;
    switch ((err as NodeJS.ErrnoException).code) {
      case 'EADDRINUSE':
        throw new UserError(`${where}: the port is already in use; choose another with --listen (port 0 picks a free one)`, ExitCode.BadUsage);
      case 'EACCES':
        throw new UserError(`${where}: permission denied; ports below 1024 need elevated privileges, choose 1024 or higher (or 0)`, ExitCode.BadUsage);
      case 'EADDRNOTAVAIL':
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        throw new UserError(`${where}: ${listen.host} is not an address of this machine; check --listen (0.0.0.0 for all)`, ExitCode.BadUsage);
      default:
        throw err;
    }
  }
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    for (const s of shutdownSignals) process.off(s, onSignal);
    io.stderr(`mqtt-sim proxy: ${signal} received, closing\n`);
    stop.abort();
  };
  for (const s of shutdownSignals) process.on(s, onSignal);
  try {
    io.stdout(`mqtt-sim proxy listening on ${formatAddress(proxy.address.address, proxy.address.port)} → upstream ${formatAddress(upstream.host, upstream.port)} (${args['profile-file'] !== undefined ? `profile file ${args['profile-file']}, ` : ''}seed ${args.seed})\nmqtt-sim proxy network: ${describeProfile(profile)}\n`);
    await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    await proxy.close();
    const s = proxy.stats;
    io.stdout(`mqtt-sim proxy closed: ${s.accepted} connections, ${s.upstreamFailures} upstream failures, ${s.resets} resets, ${s.halfOpen} half-open, ${s.slowCloses} slow closes, ${s.stalls} stalls\n`);
    process.exitCode = ExitCode.Ok;
  } finally {
    for (const s of shutdownSignals) process.off(s, onSignal);
  }
}

export const proxyCommand: CommandModule<object, ProxyArgs> = {
  command: 'proxy',
  describe: 'A TCP fault proxy: every connection to --listen reaches --upstream over an emulated network',
  builder: proxyCommandBuilder as CommandModule<object, ProxyArgs>['builder'],
  handler: proxyCommandHandler,
};
