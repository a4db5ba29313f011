/**
 * Interoperability with clients this project did not write: the mosquitto command-line clients
 * (libmosquitto) and Python paho-mqtt 1.6, at MQTT 3.1.1 and 5.0, against the in-process broker on
 * port 0. Each program's own output says when it is subscribed and what it received:
 * mosquitto_sub runs with -d (prints "Subscribed (mid: …)" at SUBACK) and -F %j (one JSON object per
 * message); the paho scripts in test/fixtures/paho/ print JSON lines and exit non-zero on their own timeout.
 *
 * A missing program skips its suite with the reason as the test name (MQTT_SIM_REQUIRE_EXTERNAL=1: fails).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QoS } from '../../../protocol/packets.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { killAllChildren, spawnChild, type Child } from '../../helpers/child-process.js';
import { findOnPath, probes, requireProgram, SYSTEM_PYTHON } from '../../helpers/external.js';

const PAHO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/paho');
/** Bound on every wait for an external program; generous for a loaded CI machine, never reached when things work. */
const WAIT_MS = 8000;
/** mosquitto_sub -W and the paho scripts' --timeout: the programs give up on their own before the test does. */
const PROGRAM_TIMEOUT_S = 6;

let tb: TestBroker;
beforeEach(async () => {
  tb = await startBroker();
});
afterEach(async () => {
  await killAllChildren();
  await tb.close();
});

const QOS_LEVELS: readonly QoS[] = [0, 1, 2];

// ---------------------------------------------------------------- mosquitto_pub / mosquitto_sub

interface MosquittoMessage {
  topic: string;
  qos: number;
  retain: number;
  payload: string;
}

const MOSQUITTO_VERSIONS = ['mqttv311', 'mqttv5'] as const;
type MosquittoVersion = (typeof MOSQUITTO_VERSIONS)[number];

/**
 * mosquitto_sub block-buffers stdout into a pipe, so its "Subscribed" line would only arrive at exit;
 * stdbuf -oL (coreutils) makes it line-buffered. stdbuf execs the program: the pid is mosquitto_sub's.
 */
function mosquittoSub(version: MosquittoVersion, args: string[]): Child {
  return spawnChild('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(tb.port), '-V', version, '-d', '-F', '%j', '-W', String(PROGRAM_TIMEOUT_S), ...args]);
}

/** Resolves when mosquitto_sub printed that its SUBACK arrived (-d). */
async function subackOf(sub: Child): Promise<void> {
  await sub.waitForLine((l) => /^Subscribed \(mid: \d+\)/.test(l), WAIT_MS, 'mosquitto_sub never received its SUBACK');
}

/** The messages mosquitto_sub printed (-F %j: one JSON object per line; debug lines start with "Client"). */
function mosquittoMessages(sub: Child): MosquittoMessage[] {
  return sub.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as MosquittoMessage);
}

/** Runs mosquitto_pub to completion (it exits once its last message is acknowledged) and expects exit 0. */
async function mosquittoPub(version: MosquittoVersion, args: string[]): Promise<void> {
  const pub = spawnChild('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.port), '-V', version, ...args]);
  const exit = await pub.exited(WAIT_MS);
  expect(exit, `${pub.commandLine}\n${pub.stderr()}`).toEqual({ code: 0, signal: null });
}

/** Waits for mosquitto_sub to exit 0 after -C N messages and returns what it printed. */
async function finished(sub: Child): Promise<MosquittoMessage[]> {
  const exit = await sub.exited(WAIT_MS);
  expect(exit, `${sub.commandLine} exited with ${JSON.stringify(exit)}; a code of 27 is its -W timeout\n${sub.lines.join('\n')}\n${sub.stderr()}`)
    .toEqual({ code: 0, signal: null });
  return mosquittoMessages(sub);
}

const mosquittoAvailable = requireProgram('mosquitto_pub/mosquitto_sub', () => {
  const clients = probes.mosquittoClients();
  if (clients !== true) return clients;
  return findOnPath('stdbuf') !== undefined || 'stdbuf not found on PATH (mosquitto_sub output must be line-buffered) — apt-get install coreutils';
});

describe.skipIf(!mosquittoAvailable)('mosquitto_pub / mosquitto_sub', () => {
  for (const version of MOSQUITTO_VERSIONS) {
    describe(`-V ${version}`, () => {
      for (const qos of QOS_LEVELS) {
        it(`publishes and subscribes at QoS ${qos}`, async () => {
          const topic = `interop/mosquitto/${version}/qos${qos}`;
          const sub = mosquittoSub(version, ['-t', topic, '-q', '2', '-C', '2']);
          await subackOf(sub);
          await mosquittoPub(version, ['-t', topic, '-q', String(qos), '-m', 'first']);
          await mosquittoPub(version, ['-t', topic, '-q', String(qos), '-m', 'second']);

          const received = await finished(sub);
          expect(received.map((m) => [m.topic, m.payload, m.qos, m.retain])).toEqual([
            [topic, 'first', qos, 0],
            [topic, 'second', qos, 0],
          ]);
        });
      }

      it('keeps a retained message for later subscribers and clears it with an empty retained payload', async () => {
        const topic = `interop/mosquitto/${version}/retained`;
        const marker = `interop/mosquitto/${version}/retained-marker`;
        await mosquittoPub(version, ['-t', topic, '-q', '1', '-r', '-m', 'kept']);

        const late = mosquittoSub(version, ['-t', topic, '-q', '1', '-C', '1']);
        // [MQTT-3.3.1-6] (3.1.1) / [MQTT-3.3.1-9] (5.0): a new subscription gets the retained message, RETAIN set.
        expect((await finished(late)).map((m) => [m.topic, m.payload, m.retain])).toEqual([[topic, 'kept', 1]]);

        // [MQTT-3.3.1-10] (3.1.1) / [MQTT-3.3.1-6] (5.0): a zero-length retained payload removes the retained message.
        await mosquittoPub(version, ['-t', topic, '-q', '1', '-r', '-n']);
        expect(tb.broker.core.retained.has(topic)).toBe(false);
        await mosquittoPub(version, ['-t', marker, '-q', '1', '-r', '-m', 'marker']);
        // Both filters in one subscriber: retained messages go out in the order of the filters, so if the
        // first message is the marker, nothing was retained for `topic` any more.
        const after = mosquittoSub(version, ['-t', topic, '-t', marker, '-q', '1', '-C', '1']);
        expect((await finished(after)).map((m) => [m.topic, m.payload, m.retain])).toEqual([[marker, 'marker', 1]]);
      });

      it('publishes the will of a client killed with SIGKILL', async () => {
        const willTopic = `interop/mosquitto/${version}/will`;
        const doomed = mosquittoSub(version, [
          '-i', `doomed-${version}`, '-t', `interop/mosquitto/${version}/unused`,
          '--will-topic', willTopic, '--will-payload', 'gone', '--will-qos', '1',
        ]);
        await subackOf(doomed);
        const watcher = mosquittoSub(version, ['-t', willTopic, '-q', '1', '-C', '1']);
        await subackOf(watcher);

        doomed.kill('SIGKILL');
        expect(await doomed.exited(WAIT_MS)).toEqual({ code: null, signal: 'SIGKILL' });
        // [MQTT-3.1.2-8] the connection closed without DISCONNECT: the broker publishes the will.
        expect((await finished(watcher)).map((m) => [m.topic, m.payload, m.qos, m.retain])).toEqual([[willTopic, 'gone', 1, 0]]);
      });
    });
  }
});

// ---------------------------------------------------------------- python3-paho-mqtt

interface PahoLine {
  event: string;
  topic?: string;
  payload?: string;
  qos?: number;
  retain?: boolean;
  granted?: number[];
}

const PAHO_VERSIONS = ['311', '5'] as const;
type PahoVersion = (typeof PAHO_VERSIONS)[number];

function paho(script: string, version: PahoVersion, clientId: string, args: string[]): Child {
  // -B: no __pycache__ written into the source tree.
  return spawnChild(SYSTEM_PYTHON, [
    '-B', path.join(PAHO_DIR, script), '--port', String(tb.port), '--version', version, '--client-id', clientId,
    '--timeout', String(PROGRAM_TIMEOUT_S), ...args,
  ]);
}

function pahoLines(child: Child): PahoLine[] {
  return child.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as PahoLine);
}

/** Waits for a paho script to exit 0 and returns its JSON lines. */
async function pahoFinished(child: Child): Promise<PahoLine[]> {
  const exit = await child.exited(WAIT_MS);
  expect(exit, `${child.commandLine} exited with ${JSON.stringify(exit)} (2: its own timeout, 3: disconnected or refused)\n${child.lines.join('\n')}\n${child.stderr()}`)
    .toEqual({ code: 0, signal: null });
  return pahoLines(child);
}

async function pahoSubscribed(child: Child): Promise<PahoLine> {
  const line = await child.waitForLine((l) => l.includes('"event": "subscribed"'), WAIT_MS, `${child.commandLine} never received its SUBACK`);
  return JSON.parse(line) as PahoLine;
}

function pahoMessages(lines: PahoLine[]): Array<[string | undefined, string | undefined, number | undefined, boolean | undefined]> {
  return lines.filter((l) => l.event === 'message').map((l) => [l.topic, l.payload, l.qos, l.retain]);
}

const pahoAvailable = requireProgram('python3-paho-mqtt', probes.pahoPython);

describe.skipIf(!pahoAvailable)('python3-paho-mqtt 1.6', () => {
  for (const version of PAHO_VERSIONS) {
    const protocol = version === '5' ? 'MQTTv5' : 'MQTTv311';
    describe(protocol, () => {
      for (const qos of QOS_LEVELS) {
        it(`publishes and subscribes at QoS ${qos}`, async () => {
          const topic = `interop/paho/${version}/qos${qos}`;
          const sub = paho('subscribe.py', version, `paho-sub-${version}-${qos}`, ['--topic', topic, '--qos', '2', '--count', '2']);
          expect((await pahoSubscribed(sub)).granted).toEqual([2]);
          const pub = paho('publish.py', version, `paho-pub-${version}-${qos}`, ['--topic', topic, '--qos', String(qos), '--message', 'first', '--message', 'second']);

          expect((await pahoFinished(pub)).filter((l) => l.event === 'published')).toHaveLength(2);
          expect(pahoMessages(await pahoFinished(sub))).toEqual([
            [topic, 'first', qos, false],
            [topic, 'second', qos, false],
          ]);
        });
      }

      it('keeps a retained message for later subscribers and clears it with an empty retained payload', async () => {
        const topic = `interop/paho/${version}/retained`;
        const marker = `interop/paho/${version}/retained-marker`;
        await pahoFinished(paho('publish.py', version, `paho-retain-${version}`, ['--topic', topic, '--qos', '1', '--retain', '--message', 'kept']));

        const late = paho('subscribe.py', version, `paho-late-${version}`, ['--topic', topic, '--qos', '1', '--count', '1']);
        expect(pahoMessages(await pahoFinished(late))).toEqual([[topic, 'kept', 1, true]]);

        await pahoFinished(paho('publish.py', version, `paho-clear-${version}`, ['--topic', topic, '--qos', '1', '--retain', '--empty']));
        expect(tb.broker.core.retained.has(topic)).toBe(false);
        await pahoFinished(paho('publish.py', version, `paho-marker-${version}`, ['--topic', marker, '--qos', '1', '--retain', '--message', 'marker']));
        // One SUBSCRIBE with both filters: retained messages follow the filter order, so a first message
        // from `marker` proves nothing was retained for `topic` any more.
        const after = paho('subscribe.py', version, `paho-after-${version}`, ['--topic', topic, '--topic', marker, '--qos', '1', '--count', '1']);
        expect(pahoMessages(await pahoFinished(after))).toEqual([[marker, 'marker', 1, true]]);
      });

      it('publishes the will of a client that exits without DISCONNECT', async () => {
        const willTopic = `interop/paho/${version}/will`;
        const watcher = paho('subscribe.py', version, `paho-watch-${version}`, ['--topic', willTopic, '--qos', '1', '--count', '1']);
        await pahoSubscribed(watcher);

        const doomed = paho('will.py', version, `paho-doomed-${version}`, ['--will-topic', willTopic, '--will-payload', 'gone', '--will-qos', '1']);
        expect((await pahoFinished(doomed)).map((l) => l.event)).toEqual(['connected']);
        // [MQTT-3.1.2-8] the network connection closed without DISCONNECT: the will is published.
        expect(pahoMessages(await pahoFinished(watcher))).toEqual([[willTopic, 'gone', 1, false]]);
      });
    });
  }
});
