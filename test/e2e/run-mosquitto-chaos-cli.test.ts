/**
 * `mqtt-sim run` with kill chaos, Mosquitto against our broker: the built CLI as a child process.
 *
 * Mosquitto with its default configuration keeps sessions and retained messages in memory only; an
 * `exec` chaos action SIGKILLs it and starts it again on the same port, so the persistent consumer's
 * session is gone: the checker reports it (session-lost, and the messages acknowledged meanwhile as
 * lost) and the verdict fails with exit 1. The same scenario against the embedded reference broker with
 * its sqlite store (`broker: kill`) reports nothing and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../simulator/report/run-result.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';
import { mosquittoBrokerPath, probes, requireProgram } from '../helpers/external.js';

const cleanups: Array<() => void> = [];

beforeAll(() => requireBuilt('cli/commands/run.js'));

afterEach(async () => {
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-mosq-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Persistent QoS 1 and QoS 2 sensors and a persistent consumer; `chaos` kills the broker at 2 s. */
function scenario(target: string | null, chaos: string): string {
  return `
name: kill-vs-mosquitto
${target === null ? '' : `target: ${target}`}
phases: { rampUp: 300ms, steady: 5s }
drain: 3s
x-persistent: &persistent
  session: { clean: false, expiry: 10m }
  reconnect: { initialDelay: 100ms, maxDelay: 500ms }
fleets:
  - name: q1
    <<: *persistent
    count: 10
    publish: { topic: "kill/q1/{id}", qos: 1, every: 100ms }
  - name: q2
    <<: *persistent
    count: 5
    publish: { topic: "kill/q2/{id}", qos: 2, every: 200ms }
consumers:
  - name: historian
    <<: *persistent
    subscribe: [{ topic: "kill/q1/#", qos: 1 }, { topic: "kill/q2/#", qos: 2 }]
chaos:
  - ${chaos}
expect:
  - qos1.lost == 0
  - qos2.lost == 0
  - qos2.duplicated == 0
  - violations == 0
`;
}

interface Outcome {
  code: number | null;
  run: RunResult;
}

async function runCli(dir: string, yaml: string): Promise<Outcome> {
  const file = join(dir, 'kill.yaml');
  writeFileSync(file, yaml);
  const reportDir = join(dir, 'report');
  const cli = spawnCli(['run', file, '--report-dir', reportDir, '--workers', '2']);
  const code = await cli.waitForExit(60_000);
  const path = join(reportDir, 'run.json');
  expect(existsSync(path), `${path} was not written\n${cli.stdout()}\n${cli.stderr()}`).toBe(true);
  return { code, run: JSON.parse(readFileSync(path, 'utf8')) as RunResult };
}

describe('mqtt-sim run with kill chaos: Mosquitto (no persistence) against our broker (sqlite)', () => {
  if (!requireProgram('mosquitto', probes.mosquittoBroker)) return;

  it('Mosquitto forgets the persistent session on SIGKILL (exit 1); our broker loses nothing (exit 0)', async () => {
    const mosquitto = mosquittoBrokerPath()!;
    const dir = tempDir();
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    const pidFile = join(dir, 'mosquitto.pid');
    // The defaults (no persistence) plus what the test needs; started as root, Mosquitto would drop to
    // user mosquitto, which cannot write the pid file here.
    const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', `pid_file ${pidFile}`];
    if (process.getuid?.() === 0) lines.push('user root');
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const start = (): void => {
      const r = spawnSync(mosquitto, ['-c', conf, '-d'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`mosquitto -d failed: ${r.stderr}`);
    };
    const stop = (): void => {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      } catch {
        // Not running.
      }
    };
    cleanups.push(stop);
    start();
    await waitForPort(port, 5000);
    const restart = join(dir, 'restart.sh');
    writeFileSync(
      restart,
      [
        'set -e',
        `pid=$(cat '${pidFile}')`,
        'kill -9 "$pid"',
        'while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done',
        'sleep 0.3',
        `'${mosquitto}' -c '${conf}' -d`,
      ].join('\n') + '\n',
    );

    const theirs = await runCli(dir, scenario(`mqtt://127.0.0.1:${port}`, `{ at: 2s, exec: "sh '${restart}'" }`));
    expect(theirs.run.chaos[0], theirs.run.chaos[0]?.detail).toMatchObject({ action: 'exec', outcome: 'ok' });
    expect(theirs.run.outcome).toBe('completed');
    const c = theirs.run.checker!;
    const lost = c.byQos[1].lost + c.byQos[2].lost;
    const sessionLost = c.violations.byKind['session-lost'];
    expect(sessionLost).toBe(1); // the consumer reconnected once, without its session
    expect(lost + sessionLost).toBeGreaterThan(0);
    expect(c.verdict).toBe('fail');
    expect(theirs.run.verdict).toBe('fail');
    expect(theirs.code).toBe(1);
    console.info(`mosquitto: lost ${lost} (qos1 ${c.byQos[1].lost}, qos2 ${c.byQos[2].lost}), session-lost ${sessionLost}, delivered ${c.byQos[1].delivered + c.byQos[2].delivered}`);

    const ours = await runCli(tempDir(), scenario(null, '{ at: 2s, broker: kill, downtime: 300ms }'));
    expect(ours.run.chaos[0], ours.run.chaos[0]?.detail).toMatchObject({ action: 'broker-kill', outcome: 'ok' });
    const o = ours.run.checker!;
    expect(o.violations.total, JSON.stringify(o.examples.slice(0, 3))).toBe(0);
    expect(o.sessions).toMatchObject({ forgotten: 0 });
    expect(o.sessions!.resumed).toBeGreaterThanOrEqual(1);
    expect(ours.run.verdict).toBe('pass');
    expect(ours.code).toBe(0);
    console.info(`ours (sqlite): lost ${o.byQos[1].lost + o.byQos[2].lost}, session-lost ${o.violations.byKind['session-lost']}, delivered ${o.byQos[1].delivered + o.byQos[2].delivered}`);
  }, 60_000);
});
