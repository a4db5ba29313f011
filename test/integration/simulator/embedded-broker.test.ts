import { existsSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  brokerArgs, parseStatCpuTicks, parseStatusKb, startEmbeddedBroker, type EmbeddedBroker,
} from '../../../simulator/orchestrator/embedded-broker.js';
import { closeAllClients, collect, connectClient, withTimeout } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';

const started: EmbeddedBroker[] = [];

async function start(options: Parameters<typeof startEmbeddedBroker>[0] = { persistence: 'sqlite' }): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker(options);
  started.push(broker);
  return broker;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(() => requireBuilt('cli/main.js'));

afterEach(async () => {
  await closeAllClients();
  await Promise.all(started.splice(0).map((b) => b.stop()));
});

describe('startEmbeddedBroker (the built CLI as a child process)', () => {
  it('serves a QoS 1 publish/subscribe round trip on the URL it reports', async () => {
    const broker = await start();
    expect(broker.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(broker.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(processExists(broker.pid)).toBe(true);

    const sub = await connectClient(broker.url, { clientId: 'embedded-sub', protocolVersion: 5 });
    const inbox = collect(sub);
    await sub.subscribeAsync('plant/+/pressure', { qos: 1 });
    const pub = await connectClient(broker.url, { clientId: 'embedded-pub', protocolVersion: 5 });
    await pub.publishAsync('plant/7/pressure', '812.5', { qos: 1 });
    const [message] = await inbox.waitFor(1);
    expect(message!.topic).toBe('plant/7/pressure');
    expect(message!.payload.toString()).toBe('812.5');
    expect(message!.packet.qos).toBe(1);
  });

  it.runIf(process.platform === 'linux')('samples the broker process: RSS, a CPU fraction, and totals', async () => {
    const broker = await start({ persistence: 'memory' });
    const sample = broker.sample();
    expect(sample.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(sample.cpu).toBeGreaterThanOrEqual(0);
    const stats = broker.stats();
    // Starting Node and loading the CLI costs some CPU; the peak RSS is at least the current one.
    expect(stats.cpuSeconds).toBeGreaterThan(0);
    expect(stats.peakRssBytes).toBeGreaterThanOrEqual(sample.rssBytes);
  });

  it('restart() keeps the port and a persistent session with its subscription', async () => {
    const broker = await start({ persistence: 'sqlite' });
    const { url, pid } = broker;
    const sub = await connectClient(url, { clientId: 'historian-0', clean: false, protocolVersion: 4 });
    await sub.subscribeAsync('pipeline/+/pressure', { qos: 1 });
    await new Promise<void>((resolve) => sub.end(false, {}, () => resolve()));

    const unexpected: unknown[] = [];
    broker.onExit((code, signal) => unexpected.push({ code, signal }));
    await broker.restart();
    expect(broker.url).toBe(url);
    expect(broker.pid).not.toBe(pid);
    expect(processExists(pid)).toBe(false);
    expect(unexpected).toEqual([]);

    const back = await connectClient(url, { clientId: 'historian-0', clean: false, protocolVersion: 4 });
    const inbox = collect(back);
    const pub = await connectClient(url, { clientId: 'sensor-0', protocolVersion: 4 });
    await pub.publishAsync('pipeline/north/pressure', '790', { qos: 1 });
    const [message] = await inbox.waitFor(1);
    expect(message!.topic).toBe('pipeline/north/pressure');
    expect(message!.payload.toString()).toBe('790');
  });

  it('restart() after kill() brings the broker back on the same port without reporting the kill', async () => {
    const broker = await start({ persistence: 'sqlite' });
    const { url, pid } = broker;
    const unexpected: unknown[] = [];
    broker.onExit((code, signal) => unexpected.push({ code, signal }));
    broker.kill('SIGKILL');
    await broker.restart();
    expect(processExists(pid)).toBe(false);
    expect(broker.url).toBe(url);
    await connectClient(broker.url, { clientId: 'after-kill' });
    expect(unexpected).toEqual([]);
  });

  it('reports an exit nobody asked for through onExit', async () => {
    const broker = await start({ persistence: 'memory' });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => broker.onExit((code, signal) => resolve({ code, signal })));
    process.kill(broker.pid, 'SIGKILL');
    expect(await withTimeout(exited, 5000, 'onExit was not called after the broker was killed from outside')).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('stop() ends the process and removes the temporary data dir', async () => {
    const broker = await start({ persistence: 'sqlite' });
    expect(existsSync(broker.dataDir)).toBe(true);
    await broker.stop();
    expect(processExists(broker.pid)).toBe(false);
    expect(existsSync(broker.dataDir)).toBe(false);
    await broker.stop(); // idempotent
  });

  it('rejects with the broker stderr when it fails to start', async () => {
    await expect(startEmbeddedBroker({ persistence: 'memory', extraArgs: ['--log-level', 'loud'] })).rejects.toThrow(
      /exited \(code 2\) before listening; its stderr:\nmqtt-sim: invalid broker configuration:\n {2}--log-level: expected one of/,
    );
  });

  it('rejects when the broker does not print its listening line in time', async () => {
    // No broker starts Node and binds a port within 1 ms.
    await expect(startEmbeddedBroker({ persistence: 'memory', readyTimeoutMs: 1 })).rejects.toThrow(/did not print its listening line within 1 ms/);
  });
});

describe('embedded broker helpers', () => {
  it('lets extraArgs replace a default flag instead of repeating it', () => {
    expect(brokerArgs([['--port', '0'], ['--log-level', 'warn']], ['--log-level', 'error', '--queue-qos0'])).toEqual([
      'broker', '--port', '0', '--log-level', 'error', '--queue-qos0',
    ]);
    expect(brokerArgs([['--port', '0']], ['--port=1883'])).toEqual(['broker', '--port=1883']);
  });

  it('reads utime + stime from /proc/<pid>/stat, even with spaces and parentheses in the command name', () => {
    const stat = '4242 (node (mqtt) sim) S 1 4242 4242 0 -1 4194560 5012 0 0 0 731 122 0 0 20 0 11 0 123456 1085857792 21793 18446744073709551615';
    expect(parseStatCpuTicks(stat)).toBe(853);
    expect(parseStatCpuTicks('garbage')).toBeNull();
  });

  it('reads VmRSS and VmHWM from /proc/<pid>/status in bytes', () => {
    const status = 'Name:\tnode\nVmPeak:\t 1099676 kB\nVmHWM:\t   92160 kB\nVmRSS:\t   87172 kB\nThreads:\t11\n';
    expect(parseStatusKb(status, 'VmRSS')).toBe(87172 * 1024);
    expect(parseStatusKb(status, 'VmHWM')).toBe(92160 * 1024);
    expect(parseStatusKb('Name:\tnode\n', 'VmRSS')).toBeNull();
  });
});
