/**
 * The long robustness campaign: our broker as a child process, 1,000,000 malformed or mutated packets
 * (plus the valid packets around them) from the campaign engine (campaign.ts), then the checks:
 * the broker is still alive and serves a fresh client (QoS 1 round trip), its open file descriptors
 * are back near the baseline (every connection's socket released), its RSS stayed bounded, and the
 * engine saw no violation.
 *
 *   npm run build && node dist/bench/robustness/main.js [--packets N] [--seed S] [--concurrency C]
 *                                                       [--max-rss-growth-mb M] [--fd-slack F]
 *   node dist/bench/robustness/main.js --seed S --replay I   (one connection of campaign S, alone)
 *
 * --packets counts malformed or mutated packets (default 1,000,000); the valid packets sent around
 * them are counted separately. Progress goes to stderr; the totals go to stdout as one JSON document.
 * Exit code 0 when every check passed, 1 when one failed, 4 when the harness itself failed. Linux
 * only (/proc for the broker's descriptors and RSS).
 *
 * The broker runs as `mqtt-sim broker --port 0 --persistence memory --sys-interval 0` plus
 * --max-packet-size 1048576 (its default, stated because the engine's 0x95 expectations depend on it)
 * and --max-queued-messages 256: session queues then stay below publisher-backpressure (1000), so the
 * broker never pauses reading a publisher by design, which would make "no answer within the wait"
 * ambiguous, and offline queues of the persistent test sessions stay small.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rssKb } from '../broker/proc-stat.js';
import { describeExpectation, runCampaign, runConnectionByIndex, type CampaignResult } from './campaign.js';
import { hexPreview } from './wire.js';
import { qos1RoundTrip } from './client.js';

const cliMain = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const MAX_PACKET_SIZE = 1024 * 1024;
const LISTENING = /listening on (?:\[[^\]]+\]|[^ :]+):(\d+)\s*$/;

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`robustness: --${name} expects a positive integer, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return n;
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;

async function until(cond: () => boolean, ms: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return true;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      packets: { type: 'string' },
      seed: { type: 'string' },
      concurrency: { type: 'string' },
      'max-rss-growth-mb': { type: 'string' },
      'fd-slack': { type: 'string' },
      replay: { type: 'string' },
    },
  });
  const target = positiveInteger('packets', values.packets, 1_000_000);
  const seed = positiveInteger('seed', values.seed, Math.floor(Math.random() * 2 ** 31) + 1);
  const concurrency = positiveInteger('concurrency', values.concurrency, 64);
  const maxRssGrowthMb = positiveInteger('max-rss-growth-mb', values['max-rss-growth-mb'], 256);
  const fdSlack = positiveInteger('fd-slack', values['fd-slack'], 8);

  const args = [cliMain, 'broker', '--port', '0', '--persistence', 'memory', '--sys-interval', '0',
    '--max-packet-size', String(MAX_PACKET_SIZE), '--max-queued-messages', '256'];
  const what = values.replay !== undefined ? `replay of connection ${values.replay}` : `${target} mutated packets, ${concurrency} connections at a time`;
  process.stderr.write(`robustness: ${what}, seed ${seed}; broker: node ${args.join(' ')}\n`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once('exit', (code, signal) => {
    exit = { code, signal };
  });
  // Both pipes are drained for the whole run (a full pipe would block the broker); the tail is kept.
  let stderrTail = '';
  let stderrLines = 0;
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) stderrLines++;
    stderrTail = (stderrTail + s).slice(-8192);
  });
  let port: number | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = LISTENING.exec(line);
    if (m !== null && port === undefined) port = Number(m[1]);
  });
  const stopChild = async (): Promise<void> => {
    if (exit !== undefined) return;
    child.kill('SIGTERM');
    if (!(await until(() => exit !== undefined, 10_000))) {
      child.kill('SIGKILL');
      await until(() => exit !== undefined, 5_000);
    }
  };
  process.once('SIGINT', () => {
    void stopChild().finally(() => process.exit(130));
  });

  const failures: string[] = [];
  let result: CampaignResult | undefined;
  const broker: Record<string, unknown> = {};
  const rssSeries: number[] = [];
  try {
    if (!(await until(() => port !== undefined || exit !== undefined, 15_000, 20)) || port === undefined) {
      throw new Error(`the broker never printed its listening line (exit ${JSON.stringify(exit)}); stderr: ${stderrTail}`);
    }
    const pid = child.pid!;
    if (values.replay !== undefined) {
      // One connection of the campaign, alone against a fresh broker (state-dependent failures may need the whole campaign).
      const index = Number(values.replay);
      const report = await runConnectionByIndex({ port, seed, mutatedPackets: 0, maxPacketSize: MAX_PACKET_SIZE }, index);
      const { plan, observation } = report;
      process.stdout.write(`${JSON.stringify({
        seed, index, version: plan.version, expectation: describeExpectation(plan.expectation), outcome: report.outcome, violations: report.violations,
        frames: plan.frames.map((f) => `${f.label}: ${hexPreview(f.bytes, 64)}`), chunks: plan.chunks.map((c) => c.length),
        received: observation.packets, closedByBroker: observation.closedByBroker,
      }, (_k, v: unknown) => (typeof v === 'object' && v !== null && (v as { type?: string }).type === 'Buffer' ? '<bytes>' : v), 2)}\n`);
      return report.violations.length === 0 ? 0 : 1;
    }
    // Warm-up: one round trip, so the baseline includes a used listener and a loaded code path.
    await qos1RoundTrip(port);
    const fdsBefore = fdCount(pid);
    const rssBefore = rssKb(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      const r = rssKb(pid);
      if (r > rssPeak) rssPeak = r;
    }, 500);
    try {
      result = await runCampaign({
        port, seed, mutatedPackets: target, concurrency, maxPacketSize: MAX_PACKET_SIZE, progressEvery: 5000,
        onProgress: (p) => {
          rssSeries.push(mb(rssKb(pid)));
          process.stderr.write(`robustness: ${p.connections} connections, ${p.packets} packets (${p.mutatedPackets} mutated), ${p.violations} violations, ${Math.round(p.elapsedMs / 1000)} s, broker rss ${mb(rssKb(pid))} MiB, fds ${fdCount(pid)}\n`);
        },
      });
    } finally {
      clearInterval(sampler);
    }
    const aliveAfterCampaign = exit === undefined;
    if (!aliveAfterCampaign) failures.push(`the broker exited during the campaign: ${JSON.stringify(exit)}`);
    // Every connection was closed by the client or the broker: the broker's sockets must be released.
    const settled = await until(() => fdCount(pid) <= fdsBefore + fdSlack, 30_000);
    const fdsAfter = fdCount(pid);
    if (!settled) failures.push(`the broker still has ${fdsAfter} open descriptors 30 s after the campaign (baseline ${fdsBefore}, slack ${fdSlack})`);
    let roundTrip = 'ok';
    try {
      await qos1RoundTrip(port);
    } catch (err) {
      roundTrip = (err as Error).message;
      failures.push(`a fresh client could not complete a QoS 1 round trip: ${roundTrip}`);
    }
    const rssAfter = rssKb(pid);
    if (rssAfter > rssPeak) rssPeak = rssAfter;
    if (rssAfter - rssBefore > maxRssGrowthMb * 1024) failures.push(`broker RSS grew by ${mb(rssAfter - rssBefore)} MiB (bound ${maxRssGrowthMb} MiB)`);
    if (result.violationCount > 0) failures.push(`${result.violationCount} violations`);
    if (result.mutatedPackets < target) failures.push(`only ${result.mutatedPackets} mutated packets sent`);
    Object.assign(broker, {
      pid, alive: exit === undefined, roundTrip,
      rssBeforeMb: mb(rssBefore), rssAfterMb: mb(rssAfter), rssPeakMb: mb(rssPeak), rssDuringMb: rssSeries,
      fdsBefore, fdsAfter, stderrLines,
    });
  } catch (err) {
    process.stderr.write(`robustness: harness failure: ${(err as Error).stack ?? String(err)}\n`);
    await stopChild();
    return 4;
  } finally {
    await stopChild();
  }
  broker.exit = exit;

  const r = result!;
  const summary = {
    seed: r.seed,
    packets: r.packets,
    mutatedPackets: r.mutatedPackets,
    validPackets: r.validPackets,
    probes: r.probes,
    connections: r.connections,
    bytesSent: r.bytesSent,
    bytesReceived: r.bytesReceived,
    outcomes: r.outcomes,
    connackCodes: r.connackCodes,
    disconnectCodes: r.disconnectCodes,
    expectations: r.expectations,
    mutations: r.mutations,
    violationCount: r.violationCount,
    violations: r.violations.slice(0, 10),
    broker,
    durationMs: r.durationMs,
    passed: failures.length === 0,
    failures,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`robustness: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(4);
  },
);
