/**
 * The pure parts of `run --processes`: the slices' command lines, both ends of the ready/start handshake,
 * the NDJSON lines the parent reads, the live merge of the slices' points and the broker's file check.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { emptyFleetCounters } from '../../../../simulator/metrics/counters.js';
import {
  checkBrokerFileLimit, defaultWorkersPerProcess, formatStartCommand, LineSplitter, linkToCoordinator, LivePointMerger,
  parseSliceLine, parseStartCommand, sliceArgs, validateProcessCount, type LiveItem,
} from '../../../../simulator/orchestrator/local-processes.js';
import { formatJsonLine } from '../../../../simulator/report/json-reporter.js';
import type { TimelinePoint } from '../../../../simulator/report/run-result.js';

function point(atMs: number, connected: number, publishedPerSec = 0): TimelinePoint {
  return {
    atMs,
    phase: 'steady',
    connected,
    publishedPerSec,
    deliveredPerSec: 0,
    e2eP50Ms: null,
    e2eP99Ms: null,
    fleets: { s: { connected, publishedPerSec, deliveredPerSec: 0, reconnects: 0, e2eP50Ms: null, e2eP99Ms: null } },
    generator: { loopDelayP99Ms: 1, scheduleSlipP99Ms: 1, cpu: 0.1, saturated: false },
  };
}

describe('validateProcessCount', () => {
  it('accepts 1 to 64', () => {
    expect(validateProcessCount(1)).toBeNull();
    expect(validateProcessCount(64)).toBeNull();
  });

  it.each([
    [0, 'expected a whole number from 1 to 64, got 0'],
    [65, 'expected a whole number from 1 to 64, got 65'],
    [1.5, 'expected a whole number from 1 to 64, got 1.5'],
    [Number.NaN, 'expected a whole number from 1 to 64, got something else'],
  ])('refuses %s', (n, message) => {
    expect(validateProcessCount(n)).toBe(message);
  });
});

describe('defaultWorkersPerProcess', () => {
  it('shares the CPUs out over the processes, at least one worker each', () => {
    expect(defaultWorkersPerProcess(8, 2)).toBe(4);
    expect(defaultWorkersPerProcess(8, 3)).toBe(2);
    expect(defaultWorkersPerProcess(2, 4)).toBe(1);
  });
});

describe('sliceArgs', () => {
  const common = { scenarioFile: '/s/crash.yaml', processes: 3, workers: 2, seed: 42, reportDir: '/r/shards/shard-2' };

  it('runs slice i/N against the parent\'s embedded broker, waiting for t=0 on stdin, with device chaos only', () => {
    expect(sliceArgs({ ...common, index: 2, target: { embeddedUrl: 'mqtt://127.0.0.1:40000' } })).toEqual([
      'run', '/s/crash.yaml', '--shard', '2/3', '--workers', '2', '--seed', '42', '--report-dir', '/r/shards/shard-2',
      '--json', '--no-dashboard', '--start-at', 'stdin', '--device-chaos-only', '--embedded-url', 'mqtt://127.0.0.1:40000',
    ]);
  });

  it('passes every target URL and the broker pid', () => {
    const args = sliceArgs({ ...common, index: 1, target: { urls: ['mqtt://127.0.0.1:1883', 'mqtt://127.0.0.2:1883'] }, brokerPid: 77 });
    expect(args.slice(15)).toEqual(['--target', 'mqtt://127.0.0.1:1883', '--target', 'mqtt://127.0.0.2:1883', '--broker-pid', '77']);
    expect(args).not.toContain('--embedded-url');
  });
});

describe('the start handshake', () => {
  it('round-trips t=0 and refuses other lines', () => {
    expect(parseStartCommand(formatStartCommand(1_750_000_000_123).trim())).toBe(1_750_000_000_123);
    expect(formatStartCommand(5)).toBe('{"type":"start","epochMs":5}\n');
    expect(parseStartCommand('{"type":"start","epochMs":-1}')).toBeNull();
    expect(parseStartCommand('{"type":"start","epochMs":1.5}')).toBeNull();
    expect(parseStartCommand('{"type":"stop"}')).toBeNull();
    expect(parseStartCommand('1750000000123')).toBeNull();
    expect(parseStartCommand('not json')).toBeNull();
  });

  it('a slice says ready when asked for t=0 and resolves with the start line its parent writes, in any chunking', async () => {
    const input = new PassThrough();
    const lines: string[] = [];
    const gone: string[] = [];
    const link = linkToCoordinator({ input, announce: () => lines.push('ready'), onGone: (r) => gone.push(r), timeoutMs: 60_000 });
    const started = link.startAt();
    expect(lines).toEqual(['ready']);
    const text = formatStartCommand(1_750_000_000_000);
    input.write('{"type":"noise"}\n');
    input.write(text.slice(0, 10));
    input.write(text.slice(10));
    await expect(started).resolves.toBe(1_750_000_000_000);
    link.close();
    expect(input.destroyed).toBe(true);
    expect(gone).toEqual([]);
  });

  it('keeps a start line that came before the slice asked', async () => {
    const input = new PassThrough();
    const link = linkToCoordinator({ input, announce: () => undefined, onGone: () => undefined, timeoutMs: 60_000 });
    input.write(formatStartCommand(99));
    await new Promise((resolve) => setImmediate(resolve));
    await expect(link.startAt()).resolves.toBe(99);
    link.close();
  });

  it('reports the parent gone when its end of the pipe closes', async () => {
    const input = new PassThrough();
    const gone = new Promise<string>((resolve) => {
      const link = linkToCoordinator({ input, announce: () => undefined, onGone: resolve, timeoutMs: 60_000 });
      void link.startAt();
    });
    input.end();
    await expect(gone).resolves.toBe('the parent process (run --processes) closed its link to this slice');
  });

  it('gives up when no start line comes in time', async () => {
    const input = new PassThrough();
    let link: ReturnType<typeof linkToCoordinator> | undefined;
    const gone = new Promise<string>((resolve) => {
      link = linkToCoordinator({ input, announce: () => undefined, onGone: resolve, timeoutMs: 10 });
      void link.startAt();
    });
    await expect(gone).resolves.toBe('no start time from the parent process within 0 s');
    link!.close();
  });

  it('does not report the parent gone after close()', () => {
    const input = new PassThrough();
    const gone: string[] = [];
    const link = linkToCoordinator({ input, announce: () => undefined, onGone: (r) => gone.push(r), timeoutMs: 60_000 });
    link.close();
    input.emit('end');
    expect(gone).toEqual([]);
  });
});

describe('parseSliceLine', () => {
  it('reads the lines the json reporter writes', () => {
    expect(parseSliceLine(formatJsonLine({ type: 'ready', pid: 123 }).trim())).toEqual({ type: 'ready', pid: 123 });
    expect(parseSliceLine(formatJsonLine({ type: 'phase', phase: 'steady', atMs: 1000 }).trim())).toEqual({ type: 'phase', phase: 'steady', atMs: 1000 });
    expect(parseSliceLine(formatJsonLine({ type: 'event', atMs: 5, level: 'warn', message: 'x' }).trim())).toEqual({ type: 'event', event: { atMs: 5, level: 'warn', message: 'x' } });
    const counters = { s: emptyFleetCounters(3) };
    expect(parseSliceLine(formatJsonLine({ type: 'point', point: point(2000, 3), counters }).trim())).toEqual({ type: 'point', point: point(2000, 3), counters });
  });

  it('skips the result line and unknown types, and returns null for stray text', () => {
    expect(parseSliceLine('{"type":"result","reportDir":null,"result":{}}')).toEqual({ type: 'other' });
    expect(parseSliceLine('{"type":"start","scenario":"x"}')).toEqual({ type: 'other' });
    expect(parseSliceLine('Error: something')).toBeNull();
    expect(parseSliceLine('{"no":"type"}')).toBeNull();
    expect(parseSliceLine('{"type":"event","atMs":1,"level":"loud","message":"x"}')).toBeNull();
  });
});

describe('LineSplitter', () => {
  it('returns whole lines across chunks and the rest at the end', () => {
    const s = new LineSplitter();
    expect(s.push('a\nb')).toEqual(['a']);
    expect(s.push('c\r\n\nd')).toEqual(['bc']);
    expect(s.end()).toEqual(['d']);
    expect(s.end()).toEqual([]);
  });
});

describe('LivePointMerger', () => {
  const points = (items: LiveItem[]): TimelinePoint[] => items.flatMap((i) => (i.kind === 'point' ? [i.point] : []));

  it('passes a point on once every running slice reached it, summed over the slices', () => {
    const m = new LivePointMerger([1, 2]);
    expect(m.point(1, point(0, 3, 10), { s: emptyFleetCounters(3) })).toEqual([]);
    const items = m.point(2, point(0, 4, 5), { s: emptyFleetCounters(4) });
    expect(items).toHaveLength(1);
    const [first] = items;
    expect(first!.kind).toBe('point');
    if (first!.kind !== 'point') return;
    expect(first.point.connected).toBe(7);
    expect(first.point.publishedPerSec).toBe(15);
    expect(first.point.fleets['s']!.connected).toBe(7);
    expect(first.counters['s']!.devices).toBe(7);
  });

  it('keeps the order of atMs and announces each phase once, before its first point', () => {
    const m = new LivePointMerger([1, 2]);
    expect(m.phase(1, 'ramp-up', 0)).toEqual([]);
    m.point(1, point(0, 1));
    m.point(1, point(1000, 1));
    expect(m.phase(2, 'ramp-up', 0)).toEqual([]);
    m.phase(1, 'steady', 1000);
    const items = m.point(2, point(1000, 1));
    // Slice 2 skipped atMs 0 (a late first tick): point 0 holds slice 1's part alone.
    expect(items.map((i) => (i.kind === 'phase' ? i.phase : i.point.atMs))).toEqual(['ramp-up', 0, 'steady', 1000]);
    expect(points(items).map((p) => p.connected)).toEqual([1, 2]);
  });

  it('a slice that ended holds nothing back; flushAll passes on the rest', () => {
    const m = new LivePointMerger([1, 2]);
    m.point(1, point(0, 1));
    expect(points(m.sliceDone(2)).map((p) => p.atMs)).toEqual([0]);
    expect(points(m.point(1, point(1000, 1))).map((p) => p.atMs)).toEqual([1000]);
    const n = new LivePointMerger([1, 2]);
    n.point(1, point(0, 1));
    n.phase(1, 'drain', 5000);
    expect(n.flushAll().map((i) => (i.kind === 'phase' ? i.phase : i.point.atMs))).toEqual([0, 'drain']);
  });
});

describe('checkBrokerFileLimit', () => {
  it('passes within the limit or when it is unknown', () => {
    expect(checkBrokerFileLimit(960, { soft: 1024, hard: 1024 })).toEqual({ ok: true });
    expect(checkBrokerFileLimit(1_000_000, null)).toEqual({ ok: true });
  });

  it('asks for ulimit when the hard limit allows it', () => {
    expect(checkBrokerFileLimit(5000, { soft: 1024, hard: 524288 }).message).toBe(
      'the embedded broker is one process holding all 5,000 connections, so it needs about 5,064 open files, but it may open only 1,024 ' +
        '(soft limit; hard limit 524,288). Run `ulimit -n 5064` in the shell before mqtt-sim.',
    );
  });

  it('points at several brokers past the hard limit', () => {
    const check = checkBrokerFileLimit(30_000, { soft: 20_000, hard: 20_000 });
    expect(check.ok).toBe(false);
    expect(check.message).toContain('one process may open at most 20,000 (hard limit): --processes splits the simulator, not the broker.');
    expect(check.message).toContain('Run against several brokers (`--target URL --target URL ...`');
  });
});
