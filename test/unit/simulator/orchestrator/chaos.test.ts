/** The chaos timeline's own actions: exec commands (real shells) and what it reports, and shard messages. */
import { describe, expect, it } from 'vitest';
import { ChaosTimeline, firstLines } from '../../../../simulator/orchestrator/chaos.js';
import type { RunEvent } from '../../../../simulator/report/reporter.js';
import type { ChaosAction } from '../../../../simulator/scenario/types.js';
import type { ToShard } from '../../../../simulator/shard/messages.js';
import { withTimeout } from '../../../helpers/broker.js';

/** Runs the actions from t=now and resolves once `count` actions reported that they are over. */
async function run(actions: ChaosAction[], count = actions.length): Promise<{ timeline: ChaosTimeline; events: RunEvent[]; sent: ToShard[] }> {
  const events: RunEvent[] = [];
  const sent: ToShard[] = [];
  let over = 0;
  let wake = (): void => {};
  const timeline = new ChaosTimeline(actions, {
    broker: null,
    broadcast: (m) => sent.push(m),
    event: (e) => {
      events.push(e);
      if (/: .*(exit code|could not start|timed out|no embedded broker|ended by)/.test(e.message)) over++;
      wake();
    },
    fleetSizes: { sensors: 4 },
    cwd: process.cwd(),
  });
  const done = new Promise<void>((resolve) => {
    wake = () => { if (over >= count) resolve(); };
  });
  timeline.start(Date.now());
  if (count > 0) await withTimeout(done, 10_000, `only ${over} of ${count} chaos actions finished; events: ${JSON.stringify(events)}`);
  await timeline.stop();
  return { timeline, events, sent };
}

describe('ChaosTimeline', () => {
  it('runs an exec command and records its exit code and first lines of output', async () => {
    const { timeline, events } = await run([{ kind: 'exec', atMs: 0, command: 'echo restarted; echo second line >&2', timeoutMs: 10_000 }]);
    expect(timeline.records).toHaveLength(1);
    const r = timeline.records[0]!;
    expect(r).toMatchObject({ action: 'exec', outcome: 'ok' });
    expect(r.detail).toMatch(/^exit code 0 in \d+ ms; output:\n {4}restarted\n {4}second line$/);
    expect(events.map((e) => e.message.split('\n')[0])).toEqual(['chaos: exec "echo restarted; echo second line >&2"', expect.stringMatching(/^chaos: exec ".*": exit code 0 in \d+ ms; output:$/)]);
  });

  it('reports a failing command and goes on with the next action', async () => {
    const { timeline, events } = await run([
      { kind: 'exec', atMs: 0, command: 'echo no such service; exit 5', timeoutMs: 10_000 },
      { kind: 'exec', atMs: 0, command: 'true', timeoutMs: 10_000 },
    ]);
    expect(timeline.records.map((r) => [r.outcome, r.detail.split(' in ')[0]])).toEqual([['failed', 'exit code 5'], ['ok', 'exit code 0']]);
    expect(events.find((e) => e.message.includes('exit code 5'))?.level).toBe('error');
  });

  it('kills a command that outlives its timeout', async () => {
    const { timeline } = await run([{ kind: 'exec', atMs: 0, command: 'sleep 30', timeoutMs: 200 }]);
    expect(timeline.records[0]).toMatchObject({ outcome: 'failed', detail: expect.stringMatching(/^timed out after 200ms in \d+ ms$/) });
  });

  it('fails a broker action when there is no embedded broker', async () => {
    const { timeline } = await run([{ kind: 'broker-kill', atMs: 0, downtimeMs: 1000 }]);
    expect(timeline.records[0]).toMatchObject({ action: 'broker-kill', outcome: 'failed', detail: expect.stringContaining('use exec') });
  });

  it('sends partitions and storms to the shards, the partition with its end in timeline time', async () => {
    const sent: ToShard[] = [];
    let wake = (): void => {};
    const twoSent = new Promise<void>((resolve) => {
      wake = () => { if (sent.length >= 2) resolve(); };
    });
    const timeline = new ChaosTimeline([
      { kind: 'partition', atMs: 0, fleet: 'sensors', durationMs: 5000 },
      { kind: 'reconnect-storm', atMs: 0, fleet: 'sensors' },
    ], { broker: null, broadcast: (m) => { sent.push(m); wake(); }, event: () => undefined, fleetSizes: { sensors: 4 }, cwd: process.cwd() });
    timeline.start(Date.now());
    await withTimeout(twoSent, 5000, 'the partition and the storm were never sent to the shards');
    await timeline.stop();
    const [partition, storm] = timeline.records;
    expect(sent).toEqual([
      { type: 'chaos', action: { kind: 'partition', fleet: 'sensors', untilMs: partition!.atMs + 5000 } },
      { type: 'chaos', action: { kind: 'storm', fleet: 'sensors' } },
    ]);
    expect(partition).toMatchObject({ action: 'partition', outcome: 'ok', endMs: partition!.atMs + 5000, detail: expect.stringMatching(/^4 device\(s\) of sensors cut off/) });
    expect(storm).toMatchObject({ action: 'reconnect-storm', outcome: 'ok' });
  });

  it('keeps the first lines of output, cut to a readable length', () => {
    expect(firstLines('a\n\n  \nb\r\nc\nd\ne\nf\n')).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(firstLines('x'.repeat(300))[0]).toHaveLength(201);
  });
});
