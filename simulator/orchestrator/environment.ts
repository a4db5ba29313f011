/**
 * What the machine running a simulation looks like (recorded in run.json) and the two OS limits that
 * cap how many devices one process can hold: open files (one socket per device) and local ports (one
 * per connection from a source address to a broker address:port). The parsers take the /proc text so
 * they are testable; the readers return null where /proc is missing (not Linux).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { RunResult } from '../report/run-result.js';

/** File descriptors a run needs besides its sockets: stdio, the report, worker threads, the event loop. */
export const spareFileDescriptors = 64;

/** The scenario YAML key of a fleet's source address pool (schema.ts; FleetSpec.localAddresses once normalized). */
const sourceAddressKey = 'sourceAddresses';

export interface FileLimit {
  /** The limit in force; `Infinity` for "unlimited". */
  soft: number;
  /** The ceiling an unprivileged `ulimit -n` can raise the soft limit to. */
  hard: number;
}

export interface LimitCheck {
  ok: boolean;
  /** Why not, and the fix; absent when ok. */
  message?: string;
}

function parseLimitValue(text: string): number | null {
  if (text === 'unlimited') return Number.POSITIVE_INFINITY;
  const value = Number(text);
  return Number.isSafeInteger(value) && value >= 0 ? value : null;
}

/** The "Max open files" row of a /proc/<pid>/limits text; null when it is absent or unreadable. */
export function parseFileLimit(limitsText: string): FileLimit | null {
  for (const line of limitsText.split('\n')) {
    const match = /^Max open files\s+(\S+)\s+(\S+)/.exec(line);
    if (match === null) continue;
    const soft = parseLimitValue(match[1]!);
    const hard = parseLimitValue(match[2]!);
    return soft === null || hard === null ? null : { soft, hard };
  }
  return null;
}

function readProcText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** This process's open file limit (from /proc/self/limits); null where it cannot be read. */
export function fileLimit(): FileLimit | null {
  const text = readProcText('/proc/self/limits');
  return text === null ? null : parseFileLimit(text);
}

/**
 * Whether this process may open a socket per device plus spareFileDescriptors. Node cannot raise its own
 * limit (no setrlimit), so the fix is always for the shell that starts mqtt-sim. When the limit cannot be
 * read (not Linux) the check passes: a shortfall then shows as EMFILE connect failures. With `processes`
 * (`run --processes N`), the devices are split over that many processes, each with its own limit.
 */
export function checkFileLimit(neededSockets: number, limit: FileLimit | null = fileLimit(), processes = 1): LimitCheck {
  if (limit === null) return { ok: true };
  const each = Math.ceil(neededSockets / Math.max(1, processes));
  const needed = each + spareFileDescriptors;
  if (limit.soft >= needed) return { ok: true };
  const devices = processes > 1 ? `${count(neededSockets)} devices over ${processes} processes (${count(each)} each) need` : `${count(neededSockets)} devices need`;
  const perProcessFiles = processes > 1 ? ' per process' : '';
  if (limit.hard >= needed) {
    // With several processes the embedded broker, which holds every connection, is checked on its own.
    const brokerNote = processes > 1 ? '' : ' The embedded broker, a separate process, inherits the same limit and needs as many for its side of the connections.';
    return {
      ok: false,
      message:
        `${devices} about ${count(needed)} open files${perProcessFiles}, but ${processes > 1 ? 'each process' : 'this process'} may open only ${count(limit.soft)} ` +
        `(soft limit; hard limit ${count(limit.hard)}). Run \`ulimit -n ${needed}\` in the shell before mqtt-sim.${brokerNote}`,
    };
  }
  const perProcess = Math.max(0, limit.hard - spareFileDescriptors);
  const split = perProcess === 0 ? null : Math.ceil(neededSockets / perProcess);
  const how = split === null ? '(`--processes N` on this machine, or `--shard i/n` on several machines)' : `(\`--processes ${split}\` on this machine, or \`--shard i/n\` on several machines)`;
  return {
    ok: false,
    message:
      `${devices} about ${count(needed)} open files${perProcessFiles}, but the hard limit is ${count(limit.hard)}: ` +
      `one process can hold at most ${count(perProcess)} devices. Split the run over ${split === null ? 'several' : `at least ${split}`} processes ` +
      `${how}, and/or spread devices over source address pools (\`${sourceAddressKey}\` in the fleet); ` +
      'an administrator can raise the hard limit (limits.conf, systemd LimitNOFILE). The embedded broker is one process that holds every ' +
      'connection under the same limit: past it, run against several brokers (`--target URL --target URL ...`).',
  };
}

export interface PortRange {
  low: number;
  high: number;
}

/** /proc/sys/net/ipv4/ip_local_port_range: two numbers separated by whitespace. */
export function parsePortRange(text: string): PortRange | null {
  const match = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (match === null) return null;
  const low = Number(match[1]);
  const high = Number(match[2]);
  return low > 0 && high >= low && high <= 65535 ? { low, high } : null;
}

/** The ephemeral port range outgoing connections bind from; null where it cannot be read. */
export function localPortRange(): PortRange | null {
  const text = readProcText('/proc/sys/net/ipv4/ip_local_port_range');
  return text === null ? null : parsePortRange(text);
}

/**
 * Every connection from one source address to one broker address:port takes a distinct local port,
 * so more devices per (source, broker) pair than the ephemeral range holds cannot all connect
 * (EADDRNOTAVAIL). Passes when the range cannot be read.
 */
export function portRangeCheck(devicesPerAddress: number, range: PortRange | null = localPortRange()): LimitCheck {
  if (range === null) return { ok: true };
  const ports = range.high - range.low;
  if (devicesPerAddress <= ports) return { ok: true };
  const addresses = Math.ceil(devicesPerAddress / ports);
  return {
    ok: false,
    message:
      `${count(devicesPerAddress)} connections from one source address to one broker address:port need more local ports than ` +
      `ip_local_port_range ${range.low}-${range.high} offers (${count(ports)}). Give the fleet source addresses ` +
      `(\`${sourceAddressKey}: [127.0.0.2, 127.0.0.3, ...]\` for a local broker, at least ${addresses}), ` +
      `or widen the range (sysctl -w net.ipv4.ip_local_port_range="1024 65535").`,
  };
}

/**
 * The most connections this process opens from one source address to one broker address:port (devices
 * without a source address pool share the kernel's default one). Each takes a local port.
 */
export function busiestSourcePair(devices: ReadonlyArray<{ url: string; localAddress?: string }>): { pair: string; devices: number } {
  const counts = new Map<string, number>();
  let best = { pair: '', devices: 0 };
  for (const d of devices) {
    let endpoint = d.url;
    try {
      const u = new URL(d.url);
      endpoint = `${u.hostname}:${u.port || u.protocol}`;
    } catch {
      // An unparsable URL fails at connect with its own message; count it as written.
    }
    const pair = `${d.localAddress ?? 'default source address'} → ${endpoint}`;
    const n = (counts.get(pair) ?? 0) + 1;
    counts.set(pair, n);
    if (n > best.devices) best = { pair, devices: n };
  }
  return best;
}

/** The machine, for run.json. `fileLimit` is the soft limit (null when unknown or unlimited). */
export function captureEnvironment(workers: number): RunResult['environment'] {
  const cpus = os.cpus();
  const limit = fileLimit();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemoryBytes: os.totalmem(),
    hostname: os.hostname(),
    workers,
    fileLimit: limit !== null && Number.isFinite(limit.soft) ? limit.soft : null,
  };
}

function count(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',') : 'unlimited';
}
