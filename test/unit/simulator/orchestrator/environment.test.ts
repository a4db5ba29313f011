import { describe, expect, it } from 'vitest';
import {
  busiestSourcePair, captureEnvironment, checkFileLimit, fileLimit, parseFileLimit, parsePortRange, portRangeCheck,
} from '../../../../simulator/orchestrator/environment.js';

const limitsText = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
`;

describe('parseFileLimit', () => {
  it('reads the soft and hard "Max open files" of a /proc/<pid>/limits text', () => {
    expect(parseFileLimit(limitsText)).toEqual({ soft: 1024, hard: 524288 });
  });

  it('reads "unlimited" as Infinity', () => {
    expect(parseFileLimit('Max open files            unlimited            unlimited            files\n')).toEqual({
      soft: Number.POSITIVE_INFINITY,
      hard: Number.POSITIVE_INFINITY,
    });
  });

  it('is null without the row or with garbage in it', () => {
    expect(parseFileLimit('Limit  Soft Limit  Hard Limit  Units\nMax processes 10 10 processes\n')).toBeNull();
    expect(parseFileLimit('Max open files            many                 1024                 files\n')).toBeNull();
  });

  it.runIf(process.platform === 'linux')('reads this process on Linux', () => {
    const limit = fileLimit();
    expect(limit).not.toBeNull();
    expect(limit!.soft).toBeGreaterThan(0);
    expect(limit!.hard).toBeGreaterThanOrEqual(limit!.soft);
  });
});

describe('checkFileLimit', () => {
  it('passes when the soft limit covers a socket per device plus 64 spare', () => {
    expect(checkFileLimit(960, { soft: 1024, hard: 1024 })).toEqual({ ok: true });
  });

  it('passes when the limit is unknown (not Linux)', () => {
    expect(checkFileLimit(1_000_000, null)).toEqual({ ok: true });
  });

  it('tells the user to raise the soft limit with ulimit when the hard limit allows it', () => {
    const check = checkFileLimit(5000, { soft: 1024, hard: 524288 });
    expect(check.ok).toBe(false);
    expect(check.message).toBe(
      '5,000 devices need about 5,064 open files, but this process may open only 1,024 (soft limit; hard limit 524,288). ' +
        'Run `ulimit -n 5064` in the shell before mqtt-sim. The embedded broker, a separate process, inherits the same limit ' +
        'and needs as many for its side of the connections.',
    );
  });

  it('tells the user to split the run when even the hard limit is too low', () => {
    const check = checkFileLimit(10_000, { soft: 1024, hard: 4096 });
    expect(check.ok).toBe(false);
    expect(check.message).toContain('the hard limit is 4,096: one process can hold at most 4,032 devices.');
    expect(check.message).toContain('Split the run over at least 3 processes (`--processes 3` on this machine, or `--shard i/n` on several machines)');
    expect(check.message).toContain('source address pools');
    expect(check.message).toContain('The embedded broker is one process that holds every connection under the same limit: past it, run against several brokers (`--target URL --target URL ...`).');
  });

  it('with --processes N, checks the devices of one process (the largest slice)', () => {
    expect(checkFileLimit(10_000, { soft: 4096, hard: 4096 }, 3)).toEqual({ ok: true });
    const soft = checkFileLimit(10_000, { soft: 1024, hard: 524288 }, 2);
    expect(soft.message).toBe(
      '10,000 devices over 2 processes (5,000 each) need about 5,064 open files per process, but each process may open only 1,024 ' +
        '(soft limit; hard limit 524,288). Run `ulimit -n 5064` in the shell before mqtt-sim.',
    );
    const hard = checkFileLimit(20_000, { soft: 4096, hard: 4096 }, 2);
    expect(hard.message).toContain('20,000 devices over 2 processes (10,000 each) need about 10,064 open files per process, but the hard limit is 4,096');
    expect(hard.message).toContain('Split the run over at least 5 processes (`--processes 5` on this machine');
  });
});

describe('portRangeCheck', () => {
  it('parses ip_local_port_range', () => {
    expect(parsePortRange('32768\t60999\n')).toEqual({ low: 32768, high: 60999 });
    expect(parsePortRange('60999 32768\n')).toBeNull();
    expect(parsePortRange('')).toBeNull();
  });

  it('passes up to high - low connections per source address', () => {
    expect(portRangeCheck(28_231, { low: 32768, high: 60999 })).toEqual({ ok: true });
    expect(portRangeCheck(50_000, null)).toEqual({ ok: true });
  });

  it('names source addresses as the fix beyond that', () => {
    const check = portRangeCheck(60_000, { low: 32768, high: 60999 });
    expect(check.ok).toBe(false);
    expect(check.message).toBe(
      '60,000 connections from one source address to one broker address:port need more local ports than ' +
        'ip_local_port_range 32768-60999 offers (28,231). Give the fleet source addresses ' +
        '(`sourceAddresses: [127.0.0.2, 127.0.0.3, ...]` for a local broker, at least 3), ' +
        'or widen the range (sysctl -w net.ipv4.ip_local_port_range="1024 65535").',
    );
  });
});

describe('captureEnvironment', () => {
  it('records the machine and the worker count', () => {
    const env = captureEnvironment(3);
    expect(env.workers).toBe(3);
    expect(env.node).toBe(process.version);
    expect(env.platform).toBe(process.platform);
    expect(env.cpus).toBeGreaterThan(0);
    expect(env.totalMemoryBytes).toBeGreaterThan(0);
    expect(typeof env.cpuModel).toBe('string');
    if (process.platform === 'linux') expect(env.fileLimit).toBe(fileLimit()!.soft);
  });
});

describe('busiestSourcePair', () => {
  it('counts connections per source address and broker address:port, the pair a local port range bounds', () => {
    const devices = [
      { url: 'mqtt://127.0.0.1:1883', localAddress: '127.0.0.2' },
      { url: 'mqtt://127.0.0.1:1883', localAddress: '127.0.0.3' },
      { url: 'mqtt://127.0.0.1:1883', localAddress: '127.0.0.2' },
      { url: 'mqtt://127.0.0.1:1884', localAddress: '127.0.0.2' },
      { url: 'mqtt://127.0.0.1:1884' },
    ];
    expect(busiestSourcePair(devices)).toEqual({ pair: '127.0.0.2 → 127.0.0.1:1883', devices: 2 });
    expect(busiestSourcePair([])).toEqual({ pair: '', devices: 0 });
    const many = Array.from({ length: 30_000 }, () => ({ url: 'mqtt://127.0.0.1:1883' }));
    const busiest = busiestSourcePair(many);
    expect(busiest.devices).toBe(30_000);
    expect(portRangeCheck(busiest.devices, { low: 32768, high: 60999 }).ok).toBe(false);
  });
});
