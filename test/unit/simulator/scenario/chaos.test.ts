/** The `chaos:` timeline of a scenario: normalization and pinned error messages. */
import { describe, expect, it } from 'vitest';
import { formatScenarioSummary } from '../../../../cli/commands/validate.js';
import { parseScenario, ScenarioError } from '../../../../simulator/scenario/load.js';

const fleets = `fleets:
  - { name: sensors, count: 2, publish: { topic: "s/{id}", every: 1s } }
consumers:
  - { name: historian, subscribe: ["s/#"] }
`;

const scenario = (chaos: string, head = 'name: t\nduration: 30s\n'): string => `${head}${fleets}chaos:\n${chaos}`;

function problems(yaml: string, targetUrls?: string[]): string[] {
  try {
    parseScenario(yaml, 'test.yaml', targetUrls !== undefined ? { targetUrls } : undefined);
  } catch (err) {
    if (err instanceof ScenarioError) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected the scenario to be invalid');
}

describe('chaos timeline: valid entries', () => {
  it('normalizes every action with its defaults, times in ms, in file order', () => {
    const s = parseScenario(scenario(`
  - { at: 10s, broker: kill }
  - { at: 12s, broker: kill, downtime: 3s }
  - { at: 20s, broker: restart }
  - { at: 25s, broker: pause, duration: 5s }
  - { at: 1500ms, exec: "systemctl restart mosquitto" }
  - { at: 2s, exec: "true", timeout: 5s }
  - { at: 5s, partition: sensors, duration: 10s }
  - { at: 0, reconnectStorm: historian }
`));
    expect(s.chaos).toEqual([
      { kind: 'broker-kill', atMs: 10_000, downtimeMs: 1000 },
      { kind: 'broker-kill', atMs: 12_000, downtimeMs: 3000 },
      { kind: 'broker-restart', atMs: 20_000 },
      { kind: 'broker-pause', atMs: 25_000, durationMs: 5000 },
      { kind: 'exec', atMs: 1500, command: 'systemctl restart mosquitto', timeoutMs: 30_000 },
      { kind: 'exec', atMs: 2000, command: 'true', timeoutMs: 5000 },
      { kind: 'partition', atMs: 5000, fleet: 'sensors', durationMs: 10_000 },
      { kind: 'reconnect-storm', atMs: 0, fleet: 'historian' },
    ]);
  });

  it('is listed by validate, in words', () => {
    const s = parseScenario(scenario('  - { at: 10s, broker: kill }\n  - { at: 20s, partition: sensors, duration: 5s }\n  - { at: 25s, exec: "true" }\n'));
    expect(formatScenarioSummary(s, 'test.yaml')).toContain('\nchaos: 10s broker kill (downtime 1s); 20s partition of sensors for 5s; 25s exec "true"\n');
  });

  it('defaults to an empty timeline', () => {
    expect(parseScenario(`name: t\nduration: 30s\n${fleets}`).chaos).toEqual([]);
  });

  it('allows exec, partitions and storms against a target', () => {
    const s = parseScenario(scenario('  - { at: 1s, exec: "true" }\n  - { at: 2s, partition: sensors, duration: 1s }\n  - { at: 3s, reconnectStorm: sensors }\n', 'name: t\nduration: 30s\ntarget: mqtt://127.0.0.1:1883\n'));
    expect(s.chaos.map((a) => a.kind)).toEqual(['exec', 'partition', 'reconnect-storm']);
  });
});

describe('chaos timeline: pinned error messages', () => {
  it.each<[string, string, string]>([
    ['unknown fleet with suggestion', '  - { at: 5s, partition: sensor, duration: 10s }\n', 'chaos[0].partition: no fleet or consumer named "sensor"; did you mean sensors?'],
    ['unknown fleet without a near name', '  - { at: 5s, reconnectStorm: valves }\n', 'chaos[0].reconnectStorm: no fleet or consumer named "valves"; the names are sensors, historian'],
    ['at beyond the duration', '  - { at: 40s, broker: kill }\n', 'chaos[0].at: 40s is not within the timeline (duration 30s); give a time below 30s'],
    ['at equal to the duration', '  - { at: 30s, reconnectStorm: sensors }\n', 'chaos[0].at: 30s is not within the timeline (duration 30s); give a time below 30s'],
    ['missing at', '  - { broker: kill }\n', 'chaos[0].at: required; for example at: 30s'],
    ['no action', '  - { at: 5s }\n', 'chaos[0]: give one action: broker (kill, restart or pause), exec, partition or reconnectStorm, e.g. { at: 30s, broker: kill }, { at: 30s, exec: "systemctl restart mosquitto" }, { at: 30s, partition: <fleet>, duration: 10s } or { at: 30s, reconnectStorm: <fleet> }'],
    ['two actions', '  - { at: 5s, broker: kill, reconnectStorm: sensors }\n', 'chaos[0]: one action per entry, got broker and reconnectStorm; split them into 2 entries'],
    ['unknown broker operation', '  - { at: 5s, broker: kil }\n', 'chaos[0].broker: expected kill, restart or pause, got "kil"; did you mean kill?'],
    ['pause without duration', '  - { at: 5s, broker: pause }\n', 'chaos[0].duration: required for broker: pause; for example duration: 10s'],
    ['partition without duration', '  - { at: 5s, partition: sensors }\n', 'chaos[0].duration: required for partition; for example duration: 10s'],
    ['downtime on a restart', '  - { at: 5s, broker: restart, downtime: 2s }\n', 'chaos[0].downtime: downtime does not apply to broker: restart; it is how long a killed broker stays down (broker: kill)'],
    ['duration on a storm', '  - { at: 5s, reconnectStorm: sensors, duration: 2s }\n', 'chaos[0].duration: duration does not apply to reconnectStorm; it is how long a broker: pause or a partition lasts'],
    ['timeout on a partition', '  - { at: 5s, partition: sensors, duration: 2s, timeout: 1s }\n', 'chaos[0].timeout: timeout does not apply to partition; it bounds an exec command'],
    ['zero duration', '  - { at: 5s, partition: sensors, duration: 0 }\n', 'chaos[0].duration: expected a duration above 0, e.g. duration: 5s'],
    ['empty command', '  - { at: 5s, exec: "  " }\n', 'chaos[0].exec: expected a shell command, got an empty text'],
    ['plain-number time', '  - { at: 5, broker: kill }\n', 'chaos[0].at: expected a duration with a unit, got the plain number 5; write 5s for seconds or 5ms for milliseconds'],
    ['unknown key', '  - { at: 5s, broker: kill, downtme: 1s }\n', 'chaos[0].downtme: unknown key; did you mean downtime?'],
    ['operation as a key', '  - { at: 5s, kill: true }\n', 'chaos[0].kill: unknown key; write broker: kill'],
  ])('%s', (_what, chaos, message) => {
    expect(problems(scenario(chaos))).toContain(message);
  });

  const brokerWithTarget = 'chaos[0].broker: broker actions act on the embedded broker, but this run has a target (in the scenario or --target); for an external broker use exec with the command that does it, e.g. { at: 30s, exec: "systemctl restart mosquitto" }';

  it('refuses a broker action when the scenario has a target', () => {
    expect(problems(scenario('  - { at: 5s, broker: kill }\n', 'name: t\nduration: 30s\ntarget: mqtt://127.0.0.1:1883\n'))).toEqual([brokerWithTarget]);
  });

  it('refuses a broker action when --target is given', () => {
    expect(problems(scenario('  - { at: 5s, broker: restart }\n'), ['mqtt://127.0.0.1:1883'])).toEqual([brokerWithTarget]);
  });

  it('reports every bad entry, each with its index', () => {
    expect(problems(scenario('  - { at: 5s, broker: kill }\n  - { at: 1m, reconnectStorm: nobody }\n')).sort()).toEqual([
      'chaos[1].at: 1m is not within the timeline (duration 30s); give a time below 30s',
      'chaos[1].reconnectStorm: no fleet or consumer named "nobody"; the names are sensors, historian',
    ]);
  });
});
