import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clockTicks, parseStatCpuTicks, parseStatusKb, PidUsageSampler, readProc, SelfUsageSampler, type UsageSample,
} from '../../../../simulator/metrics/process-usage.js';
import { waitUntil } from '../../../helpers/wait.js';

// Spaces, parentheses and spaces-in-parentheses in the command name are covered in
// test/integration/simulator/embedded-broker.test.ts; these are the other shapes /proc gives.
describe('/proc parsers', () => {
  it('reads a stat line whose command name holds a ") " followed by numbers', () => {
    // The last ")" ends the name: a name like "x) 1 2 3 (y" must not shift the fields.
    const stat = '77 (x) 1 2 3 (y) R 1 77 77 0 -1 4194304 100 0 0 0 40 2 0 0 20 0 1 0 5000 100000 250 18446744073709551615\n';
    expect(parseStatCpuTicks(stat)).toBe(42);
  });

  it('gives null for a stat line cut short or with non-numeric times', () => {
    expect(parseStatCpuTicks('77 (node) Z 1 77 77 0 -1 4194304')).toBeNull();
    expect(parseStatCpuTicks('77 (node) S 1 77 77 0 -1 4194304 100 0 0 0 x y 0 0 20 0 1 0 5000')).toBeNull();
  });

  it('reads an RSS of 0 kB and ignores a VmRSS that is not at the start of a line', () => {
    expect(parseStatusKb('Name:\tkworker\nVmRSS:\t       0 kB\n', 'VmRSS')).toBe(0);
    expect(parseStatusKb('Name:\tx VmRSS: 5 kB\n', 'VmRSS')).toBeNull();
  });

  it.runIf(process.platform === 'linux')('parses this process\'s own /proc texts', () => {
    const ticks = parseStatCpuTicks(readProc(process.pid, 'stat')!);
    expect(Number.isInteger(ticks)).toBe(true);
    const rss = parseStatusKb(readProc(process.pid, 'status')!, 'VmRSS')!;
    // The kernel's count and Node's agree to within the growth between the two reads.
    const nodeRss = process.memoryUsage.rss();
    expect(rss).toBeGreaterThan(nodeRss / 2);
    expect(rss).toBeLessThan(nodeRss * 2);
  });

  it('reads the clock tick rate as a positive integer', () => {
    expect(Number.isInteger(clockTicks())).toBe(true);
    expect(clockTicks()).toBeGreaterThan(0);
  });
});

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});

/** A node process that keeps one core busy for at most `ms` (then exits on its own). */
async function cpuBurner(ms: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `const end = Date.now() + ${ms}; let x = 0; while (Date.now() < end) x++;`], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  return child;
}

describe.runIf(process.platform === 'linux')('PidUsageSampler', () => {
  it('measures the CPU and memory of a busy process, and nothing once it has exited', async () => {
    const child = await cpuBurner(20_000);
    const sampler = new PidUsageSampler(child.pid!);
    expect(sampler.exists()).toBe(true);
    let sample: UsageSample | null = null;
    await waitUntil(
      () => {
        sample = sampler.sample();
        return sample !== null && sample.cpu > 0;
      },
      15_000,
      'the busy child to show CPU use',
      100,
    );
    expect(sample!.rssBytes).toBeGreaterThan(1024 * 1024);

    child.kill('SIGKILL');
    await once(child, 'exit'); // Node has reaped it: /proc no longer lists it
    expect(sampler.sample()).toBeNull();
    expect(sampler.exists()).toBe(false);
    expect(readProc(child.pid!, 'stat')).toBeNull();
  });

  it('gives null for a pid that is not running', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(child, 'exit');
    expect(new PidUsageSampler(child.pid!).sample()).toBeNull();
  });
});

describe('SelfUsageSampler', () => {
  it('counts the CPU a worker thread burns, not only the main thread\'s', async () => {
    const startedNs = process.hrtime.bigint(); // before the sampler starts, so `seconds` covers its whole interval
    const sampler = new SelfUsageSampler();
    // The worker spins until the process has used 300 ms more CPU (bounded at 10 s), while this thread waits.
    const worker = new Worker(
      `const start = process.cpuUsage(); const end = Date.now() + 10000; let x = 0;
       while (Date.now() < end) { for (let i = 0; i < 100000; i++) x += i; const u = process.cpuUsage(start); if (u.user + u.system >= 300000) break; }`,
      { eval: true },
    );
    await once(worker, 'exit');
    const sample = sampler.sample();
    const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
    // cpu is in cores over the sampler's interval, which is inside `seconds`: cpu × seconds ≥ the CPU burnt.
    expect(sample.cpu * seconds).toBeGreaterThanOrEqual(0.29);
    expect(sample.rssBytes).toBeGreaterThan(1024 * 1024);
  });
});
