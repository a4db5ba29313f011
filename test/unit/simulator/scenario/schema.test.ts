import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario, parseScenario, ScenarioError } from '../../../../simulator/scenario/load.js';
import type { Scenario } from '../../../../simulator/scenario/types.js';

const scenariosDir = fileURLToPath(new URL('../../../../scenarios/', import.meta.url));

/** The issues of an invalid scenario, as `path: message` lines. */
function problems(yaml: string): string[] {
  try {
    parseScenario(yaml, 'test.yaml');
  } catch (err) {
    if (err instanceof ScenarioError) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected the scenario to be invalid');
}

const minimal = (fleet: string): string => `name: t\nduration: 10s\nfleets:\n${fleet}`;

describe('a valid full scenario', () => {
  const yaml = `
name: full
description: every key
duration: 20s
seed: 7
drain: 2s
target: { url: mqtt://broker.example.com, protocol: 3.1.1, username: u, password: p, connectTimeout: 3s }
phases: { rampUp: 4s, rampDown: 1s }
fleets:
  - name: pressure
    count: 4
    clientId: "p-{segment}-{index}"
    attributes: { segment: { cycle: [north, south] }, line: { pick: [a, b] }, zone: { range: [1, 8] }, site: plant-1 }
    connect: 2/s
    session: { clean: false, expiry: 1h }
    keepalive: 30s
    will: { topic: "status/{id}", payload: "{id} gone", qos: 1, retain: true, delay: 5s }
    publish:
      topic: "pipeline/{segment}/pressure/{id}"
      qos: 1
      every: 500ms
      jitter: 10%
      retain: false
      payload: { psi: "sine(800,40,60s)", valve: "enum(open,closed)", raw: "bytes(64)", n: "counter()", site: "{site}", ok: true }
    subscribe: [ { topic: "alerts/{segment}/#", qos: 2 }, "broadcast/#" ]
    inflight: 5
    sourceAddresses: [127.0.0.2, "::1"]
    reconnect: { initialDelay: 100ms, maxDelay: 5s, multiplier: 1.5 }
    target: [mqtt://a:1884, ws://b:8080]
  - name: valves
    model: plc
    count: 2
    subscribe: [ { topic: "cmd/{id}", qos: 2 } ]
  - name: gw
    model: gateway
    count: 1
    sensors: 3
    publish: [ { topic: "gw/{id}/{sensor}", rate: 2/s, payload: { size: 32 } } ]
consumers:
  - name: scada
    subscribe: { topic: "$share/g/pipeline/+/pressure/#", qos: 1 }
    commands: { fleet: valves, topic: "cmd/{target}", qos: 2, every: 2s, jitter: 0.05, payload: { position: "uniform(0,100)" } }
expect:
  - qos2.duplicated == 0
  - latency.e2e.p99 < 500ms
`;

  it('normalizes to exact values with every default filled in', () => {
    const scenario = parseScenario(yaml, undefined, { seed: 9 });
    const common = { localAddresses: [], reconnect: { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2 }, inflight: 20, keepaliveSec: 60, attributes: {} };
    const expected: Scenario = {
      name: 'full',
      description: 'every key',
      durationMs: 20_000,
      seed: 9,
      target: { urls: ['mqtt://broker.example.com:1883'], protocolVersion: 4, username: 'u', password: 'p', connectTimeoutMs: 3000 },
      phases: { rampUpMs: 4000, steadyMs: 15_000, rampDownMs: 1000 },
      drainMs: 2000,
      fleets: [
        {
          name: 'pressure', model: 'sensor', count: 4, clientId: 'p-{segment}-{index}',
          attributes: {
            segment: { kind: 'cycle', values: ['north', 'south'] }, line: { kind: 'pick', values: ['a', 'b'] },
            zone: { kind: 'range', min: 1, max: 8 }, site: { kind: 'value', value: 'plant-1' },
          },
          connectRatePerSec: 2,
          session: { clean: false, expirySec: 3600 },
          keepaliveSec: 30,
          will: { topic: 'status/{id}', payload: '{id} gone', qos: 1, retain: true, delaySec: 5 },
          publish: [{
            topic: 'pipeline/{segment}/pressure/{id}', qos: 1, retain: false, intervalMs: 500, jitter: 0.1,
            payload: {
              kind: 'json',
              fields: {
                psi: { kind: 'sine', mean: 800, amplitude: 40, periodMs: 60_000 },
                valve: { kind: 'enum', values: ['open', 'closed'] },
                raw: { kind: 'bytes', size: 64 },
                n: { kind: 'counter', start: 0, step: 1 },
                site: { kind: 'template', template: '{site}' },
                ok: { kind: 'constant', value: true },
              },
            },
          }],
          subscribe: [{ topic: 'alerts/{segment}/#', qos: 2 }, { topic: 'broadcast/#', qos: 0 }],
          sensorsPerDevice: 1,
          inflight: 5,
          localAddresses: ['127.0.0.2', '::1'],
          reconnect: { initialDelayMs: 100, maxDelayMs: 5000, multiplier: 1.5 },
          targetUrls: ['mqtt://a:1884', 'ws://b:8080/mqtt'],
        },
        {
          ...common, name: 'valves', model: 'plc', count: 2, clientId: '{fleet}-{index}', connectRatePerSec: Infinity,
          session: { clean: true, expirySec: 0 }, publish: [], subscribe: [{ topic: 'cmd/{id}', qos: 2 }], sensorsPerDevice: 1,
          reply: { topic: '{fleet}/{id}/state', qos: 1, retain: true },
        },
        {
          ...common, name: 'gw', model: 'gateway', count: 1, clientId: '{fleet}-{index}', connectRatePerSec: Infinity,
          session: { clean: true, expirySec: 0 }, subscribe: [], sensorsPerDevice: 3,
          publish: [{ topic: 'gw/{id}/{sensor}', qos: 0, retain: false, intervalMs: 500, jitter: 0, payload: { kind: 'bytes', size: 32 } }],
        },
        {
          ...common, name: 'scada', model: 'consumer', count: 1, clientId: '{fleet}-{index}', connectRatePerSec: Infinity,
          session: { clean: true, expirySec: 0 }, publish: [], sensorsPerDevice: 1,
          subscribe: [{ topic: '$share/g/pipeline/+/pressure/#', qos: 1 }],
          commands: {
            fleet: 'valves', topic: 'cmd/{target}', qos: 2, intervalMs: 2000, jitter: 0.05,
            payload: { kind: 'json', fields: { position: { kind: 'uniform', min: 0, max: 100 } } },
          },
        },
      ],
      chaos: [],
      expect: [
        { source: 'qos2.duplicated == 0', metric: 'qos2.duplicated', op: '==', value: 0 },
        { source: 'latency.e2e.p99 < 500ms', metric: 'latency.e2e.p99', op: '<', value: 500 },
      ],
    };
    expect(scenario).toEqual(expected);
  });

  it('derives ramp-up from connect rates (capped at 25% of the duration) when phases are omitted', () => {
    const s = parseScenario(minimal('  - { name: a, count: 30, connect: 10/s, publish: { topic: "a/{id}", every: 1s } }\n'));
    expect(s.phases).toEqual({ rampUpMs: 2500, steadyMs: 7500, rampDownMs: 0 });
    const fast = parseScenario(minimal('  - { name: a, count: 5, connect: 10/s, publish: { topic: "a/{id}", every: 1s } }\n'));
    expect(fast.phases).toEqual({ rampUpMs: 500, steadyMs: 9500, rampDownMs: 0 });
    const unlimited = parseScenario(minimal('  - { name: a, count: 5, publish: { topic: "a/{id}", every: 1s } }\n'));
    expect(unlimited).toMatchObject({ target: null, seed: 1, drainMs: 5000, phases: { rampUpMs: 0, steadyMs: 10_000, rampDownMs: 0 } });
  });

  it('takes the duration from the phases when it is omitted, and applies --target', () => {
    const s = parseScenario('name: t\nphases: { rampUp: 1s, steady: 2s, rampDown: 1s }\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\n', undefined, { targetUrls: ['mqtts://x'] });
    expect(s.durationMs).toBe(4000);
    expect(s.target).toEqual({ urls: ['mqtts://x:8883'], protocolVersion: 5, connectTimeoutMs: 10_000 });
  });
});

describe('pinned error messages (each names the YAML path and the fix)', () => {
  const sensor = (extra: string): string => minimal(`  - name: s\n    count: 2\n    publish: { topic: "s/{id}", every: 1s }\n${extra}`);
  it.each<[string, string, string]>([
    ['unknown key with suggestion', minimal('  - name: s\n    count: 1\n    publsh: { topic: a, every: 1s }\n'), 'fleets[0].publsh: unknown key; did you mean publish?'],
    ['qos out of range', minimal('  - { name: s, count: 1, publish: { topic: a, every: 1s, qos: 3 } }\n'), 'fleets[0].publish.qos: expected 0, 1 or 2, got 3'],
    ['plain-number duration', minimal('  - { name: s, count: 1, publish: { topic: a, every: 5 } }\n'), 'fleets[0].publish.every: expected a duration with a unit, got the plain number 5; write 5s for seconds or 5ms for milliseconds'],
    ['every and rate', minimal('  - { name: s, count: 1, publish: { topic: a, every: 1s, rate: 2/s } }\n'), 'fleets[0].publish: give every or rate, not both (every: 1s is rate: 1/s)'],
    ['wildcard in a publish topic', minimal('  - { name: s, count: 1, publish: [{ topic: "a/+/{id}", every: 1s }] }\n'), `fleets[0].publish[0].topic: topic name must not contain the wildcard '+' ("a/+/{id}" renders "a/+/s-0" for device 0); a publish topic names one topic, only subscriptions take + and #`],
    ['unknown placeholder', minimal('  - { name: s, count: 1, attributes: { segment: x }, publish: { topic: "a/{segmnt}", every: 1s } }\n'), 'fleets[0].publish.topic: unknown placeholder {segmnt}; available here: {id}, {fleet}, {index}, {segment}'],
    ['{target} outside commands', sensor('    subscribe: ["c/{target}"]\n'), 'fleets[0].subscribe[0]: {target} is only available in consumers[].commands (topic and payload); available here: {id}, {fleet}, {index}'],
    ['{sensor} outside gateways', minimal('  - { name: s, count: 1, publish: { topic: "a/{id}/{sensor}", every: 1s } }\n'), 'fleets[0].publish.topic: {sensor} is only available in the publish topics and payloads of gateway fleets; available here: {id}, {fleet}, {index}'],
    ['duplicate client ids in a fleet', minimal('  - { name: s, count: 2, clientId: "dev", publish: { topic: a, every: 1s } }\n'), 'fleets[0].clientId: "dev" renders "dev" for devices 0 and 1; include {index} so every device gets its own client id'],
    ['duplicate client ids across fleets', minimal('  - { name: a, count: 2, clientId: "x-{index}", publish: { topic: a, every: 1s } }\n  - { name: b, count: 2, clientId: "x-{index}", publish: { topic: b, every: 1s } }\n'), 'fleets[1].clientId: "x-{index}" renders "x-0" (device 0), which fleets[0] also uses; client ids must be unique across the scenario (include {fleet} and {index})'],
    ['duplicate names', minimal('  - { name: a, count: 1, publish: { topic: a, every: 1s } }\nconsumers:\n  - { name: a, clientId: "c" }\n'), 'consumers[0].name: "a" is already the name of fleets[0]; fleet and consumer names must be unique'],
    ['phases that do not add up', 'name: t\nduration: 10s\nphases: { rampUp: 2s, steady: 5s, rampDown: 1s }\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\n', 'phases: rampUp 2s + steady 5s + rampDown 1s = 8s, but duration is 10s; make the phases add up to the duration, or drop duration (it is then their sum)'],
    ['commands to a missing fleet', minimal('  - { name: valves, model: plc, count: 1, subscribe: ["cmd/{id}"] }\nconsumers:\n  - { name: scada, commands: { fleet: valvs, topic: "cmd/{target}", every: 1s } }\n'), 'consumers[0].commands.fleet: no fleet named "valvs"; did you mean valves? the plc fleets are valves'],
    ['commands to a non-plc fleet', minimal('  - { name: s, count: 1, publish: { topic: a, every: 1s } }\nconsumers:\n  - { name: scada, commands: { fleet: s, topic: "cmd/{target}", every: 1s } }\n'), 'consumers[0].commands.fleet: fleet s is model sensor; commands go to plc fleets'],
    ['commands nobody subscribes to', minimal('  - { name: valves, model: plc, count: 1 }\nconsumers:\n  - { name: scada, commands: { fleet: valves, topic: "cmd/{target}", qos: 2, every: 1s } }\n'), 'consumers[0].commands.topic: "cmd/valves-0" (a command to valves-0) matches no subscription of fleet valves; add subscribe: [{ topic: "cmd/{id}", qos: 2 }] to fleets[0]'],
    ['sensors on a sensor fleet', sensor('    sensors: 4\n'), 'fleets[0].sensors: sensors is only for model gateway (this fleet is model sensor); remove it or set model: gateway'],
    ['sensor without publish', minimal('  - { name: s, count: 1 }\n'), 'fleets[0].publish: a sensor fleet needs at least one publish entry, e.g. publish: { topic: "plant/{id}/value", qos: 1, every: 1s }'],
    ['bad generator', minimal('  - { name: s, count: 1, publish: { topic: a, every: 1s, payload: { psi: "sine(800, 40)" } } }\n'), 'fleets[0].publish.payload.psi: expected sine(mean, amplitude, period), e.g. sine(800, 40, 60s), got "sine(800, 40)"'],
    ['misspelt generator', minimal('  - { name: s, count: 1, publish: { topic: a, every: 1s, payload: { t: "gausian(1, 2)" } } }\n'), 'fleets[0].publish.payload.t: unknown generator gausian(); did you mean gaussian(mean, stddev), e.g. gaussian(70, 2.5)?'],
    ['bad target scheme', 'name: t\nduration: 1s\ntarget: http://broker:80\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\n', 'target: unsupported scheme http:// in "http://broker:80"; use mqtt, mqtts, ws or wss'],
    ['unknown metric', 'name: t\nduration: 1s\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\nexpect: ["latency.e2e.p9999 < 1s"]\n', 'expect[0]: unknown metric latency.e2e.p9999; did you mean latency.e2e.p999? see the metric list in docs/scenarios.md'],
    ['misspelt checker metric', 'name: t\nduration: 1s\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\nexpect: ["qos1.lots == 0"]\n', 'expect[0]: unknown metric qos1.lots; did you mean qos1.lost? see the metric list in docs/scenarios.md'],
    ['jitter of 100%', minimal('  - { name: s, count: 1, publish: { topic: a, every: 1s, jitter: 100% } }\n'), 'fleets[0].publish.jitter: expected a jitter from 0 up to (not including) 100%, got "100%"; e.g. 10% or 0.1'],
    ['consumer model under fleets', minimal('  - { name: s, model: consumer, count: 1 }\n'), 'fleets[0].model: consumers are declared under consumers:, not fleets:; move this entry there'],
    ['wrong type', 'name: t\nduration: 1s\nfleets: { name: a }\n', 'fleets: expected a list, got a mapping'],
    ['missing duration', 'name: t\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\n', 'duration: required unless phases gives steady (and optionally rampUp and rampDown); for example duration: 60s'],
    ['keepalive not whole seconds', sensor('    keepalive: 1500ms\n'), 'fleets[0].keepalive: expected whole seconds (MQTT sends this in seconds), got "1500ms"; write 2s'],
    ['nothing to simulate', 'name: t\nduration: 1s\n', 'a scenario needs at least one entry under fleets or consumers'],
  ])('%s', (_what, yaml, message) => {
    expect(problems(yaml)).toContain(message);
  });

  it('gives YAML syntax errors with line:column', () => {
    expect(problems('name: t\nfleets:\n  - name: a\n   count: 1\n')[0]).toMatch(/^test\.yaml:4:\d+: YAML syntax error: /);
    expect(problems('name: t\nname: u\n')).toEqual(['test.yaml:2:1: YAML syntax error: Map keys must be unique; remove or rename one of them']);
  });

  it('names the path of a missing file', () => {
    expect(() => loadScenario('/nonexistent/dir/x.yaml')).toThrow('cannot read scenario /nonexistent/dir/x.yaml: no such file');
  });

  it('lists every issue of the document, not only the first', () => {
    const lines = problems(minimal('  - name: s\n    count: 0\n    publish: { topic: a, qos: 5, every: 1s }\n    keepalive: fast\n'));
    expect([...lines].sort()).toEqual([
      'fleets[0].count: expected an integer 1 or more, got 0',
      'fleets[0].keepalive: expected a duration like 500ms, 1s, 2m or 1h, got "fast"',
      'fleets[0].publish.qos: expected 0, 1 or 2, got 5',
    ].sort());
  });
});

describe('TLS paths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-scenario-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolve against the scenario folder and must exist', () => {
    writeFileSync(join(dir, 'ca.pem'), 'x');
    const file = join(dir, 's.yaml');
    writeFileSync(file, 'name: t\nduration: 1s\ntarget: { url: mqtts://b, tls: { ca: ca.pem, rejectUnauthorized: false } }\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\n');
    expect(loadScenario(file).target?.tls).toEqual({ ca: join(dir, 'ca.pem'), rejectUnauthorized: false });
    writeFileSync(file, 'name: t\nduration: 1s\ntarget: { url: mqtts://b, tls: { ca: missing.pem } }\nfleets: [{ name: a, count: 1, publish: { topic: a, every: 1s } }]\n');
    expect(() => loadScenario(file)).toThrow(`target.tls.ca: cannot read ${join(dir, 'missing.pem')}: no such file; paths are relative to the scenario file's folder`);
  });
});

describe('scenarios/', () => {
  const files = readdirSync(scenariosDir).filter((f) => f.endsWith('.yaml'));
  it('has the smoke and pipeline scenarios', () => {
    expect(files).toEqual(expect.arrayContaining(['smoke.yaml', 'pipeline.yaml']));
  });
  it.each(files)('%s validates', (file) => {
    const scenario = loadScenario(join(scenariosDir, file));
    expect(scenario.name).toBe(file.replace(/\.yaml$/, ''));
  });
});
