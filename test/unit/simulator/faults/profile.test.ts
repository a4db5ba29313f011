import { describe, expect, it } from 'vitest';
import { describeProfile, profilesTable } from '../../../../simulator/faults/describe.js';
import { DeviceNetwork, sampleLatency, type LinkClock, type LinkEvent } from '../../../../simulator/faults/link.js';
import { parseBandwidth, parseNetworkSpec } from '../../../../simulator/faults/network-spec.js';
import { deliveryPauseMs, isTransparent, latencyCeilingMs, presetNames, presets, resolveProfile } from '../../../../simulator/faults/profile.js';
import { parseScenario, ScenarioError } from '../../../../simulator/scenario/load.js';
import { createPrng } from '../../../../simulator/scenario/prng.js';

function problems(yaml: string): string[] {
  try {
    parseScenario(yaml, 'test.yaml');
  } catch (err) {
    if (err instanceof ScenarioError) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected the scenario to be invalid');
}

function specProblems(value: unknown): string[] {
  const r = parseNetworkSpec(value);
  if (r.ok) throw new Error('expected the network to be invalid');
  return r.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const base = 'name: n\ntarget: mqtt://127.0.0.1:1883\nduration: 5s\n';

describe('presets', () => {
  it('has the six named presets, each plain data that survives structured cloning', () => {
    expect(Object.keys(presets)).toEqual(['lan', 'wifi', 'cellular-4g', 'cellular-3g', 'satellite', 'factory-floor']);
    for (const name of presetNames) {
      expect(presets[name].preset).toBe(name);
      expect(structuredClone(presets[name])).toEqual(presets[name]);
    }
  });

  it('only lan is transparent (no link is inserted for it)', () => {
    expect(presetNames.filter((n) => isTransparent(presets[n]))).toEqual(['lan']);
  });

  it('orders the presets by round-trip latency as published figures do', () => {
    const r = createPrng(1);
    const medianRtt = (name: (typeof presetNames)[number]): number => {
      const draws = Array.from({ length: 501 }, () => sampleLatency(presets[name].up.latency, r) + sampleLatency(presets[name].down.latency, r)).sort((a, b) => a - b);
      return draws[250]!;
    };
    expect(medianRtt('wifi')).toBeGreaterThan(2);
    expect(medianRtt('wifi')).toBeLessThan(20);
    expect(medianRtt('cellular-4g')).toBeGreaterThan(30);
    expect(medianRtt('cellular-4g')).toBeLessThan(80);
    expect(medianRtt('cellular-3g')).toBeGreaterThan(100);
    expect(medianRtt('cellular-3g')).toBeLessThan(500);
    expect(medianRtt('satellite')).toBeGreaterThan(550);
    expect(medianRtt('satellite')).toBeLessThan(650);
  });

  it('prints every preset in the table', () => {
    const table = profilesTable(presets);
    for (const name of presetNames) expect(table).toMatch(new RegExp(`^${name}\\s+up`, 'm'));
    expect(describeProfile(presets['cellular-3g'])).toContain('up 384 kbit/s / down 2 Mbit/s');
  });
});

describe('resolveProfile', () => {
  it('returns a copy of a preset by name', () => {
    const p = resolveProfile('cellular-4g');
    expect(p).toEqual(presets['cellular-4g']);
    p.up.jitterMs = 99;
    expect(presets['cellular-4g'].up.jitterMs).toBe(5);
  });

  it('overrides field by field: shared fields for both directions, up/down for one', () => {
    const p = resolveProfile({
      preset: 'cellular-4g',
      latency: { dist: 'fixed', ms: 40 },
      up: { bandwidth: 8000 },
      disconnects: { mtbfMs: 120_000, downtimeMs: { min: 2000, max: 15_000 } },
      failure: { halfOpen: 1 },
    });
    expect(p.up.latency).toEqual({ dist: 'fixed', ms: 40 });
    expect(p.down.latency).toEqual({ dist: 'fixed', ms: 40 });
    expect(p.up.bandwidth).toBe(8000);
    expect(p.down.bandwidth).toBe(presets['cellular-4g'].down.bandwidth);
    expect(p.up.loss).toEqual(presets['cellular-4g'].up.loss);
    expect(p.disconnects).toEqual({ mtbfMs: 120_000, downtimeMs: { min: 2000, max: 15_000 } });
    expect(p.failure).toEqual({ reset: 0.5, halfOpen: 1, slowClose: 0.2 });
  });

  it('starts from lan without a preset, and disconnects: null removes the preset ones', () => {
    expect(resolveProfile({}).preset).toBe('lan');
    expect(resolveProfile({ preset: 'satellite', disconnects: null }).disconnects).toBeNull();
  });

  it('throws for an unknown name', () => {
    expect(() => resolveProfile('5g')).toThrow(/unknown network preset "5g"/);
  });
});

describe('the YAML network syntax', () => {
  it('parses units, shorthands and every loss model', () => {
    const r = parseNetworkSpec({
      preset: 'wifi',
      latency: '20ms..60ms',
      jitter: '5ms',
      bandwidth: '1Mbit/s',
      loss: { model: 'random', p: '1%', stall: '300ms' },
      maxSegment: 536,
      down: { latency: { dist: 'pareto', min: '50ms', alpha: 2 }, bandwidth: '125kB/s', loss: { model: 'gilbert-elliott', pGoodToBad: 0.01, pBadToGood: '25%', lossBad: 0.3, stall: '1s' } },
      disconnects: { mtbf: '2m', downtime: '2s..15s' },
      failure: { reset: 1, halfOpen: 0, slowClose: 0 },
      slowClose: '1s..3s',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.profile;
    expect(p.up).toEqual({ latency: { dist: 'uniform', min: 20, max: 60 }, jitterMs: 5, bandwidth: 125_000, loss: { model: 'random', p: 0.01, stallMs: 300 }, maxSegment: 536 });
    expect(p.down.latency).toEqual({ dist: 'pareto', min: 50, alpha: 2, max: 1000 });
    expect(p.down.bandwidth).toBe(125_000);
    expect(p.down.loss).toEqual({ model: 'gilbert-elliott', pGoodToBad: 0.01, pBadToGood: 0.25, lossGood: 0, lossBad: 0.3, stallMs: 1000 });
    expect(p.down.jitterMs).toBe(5);
    expect(p.disconnects).toEqual({ mtbfMs: 120_000, downtimeMs: { min: 2000, max: 15_000 } });
    expect(p.failure).toEqual({ reset: 1, halfOpen: 0, slowClose: 0 });
    expect(p.slowCloseMs).toEqual({ min: 1000, max: 3000 });
  });

  it('reads bandwidths in bits and bytes', () => {
    expect(parseBandwidth('384kbit/s')).toEqual({ ok: true, value: 48_000 });
    expect(parseBandwidth('2Mbps')).toEqual({ ok: true, value: 250_000 });
    expect(parseBandwidth('unlimited')).toEqual({ ok: true, value: 0 });
    expect(parseBandwidth(5000)).toEqual({ ok: true, value: 5000 });
    expect(parseBandwidth('fast').ok).toBe(false);
  });

  it('names the path and the fix of every problem', () => {
    expect(specProblems('cellular-5g')).toEqual([': unknown preset "cellular-5g"; did you mean cellular-4g? (presets: lan, wifi, cellular-4g, cellular-3g, satellite, factory-floor)']);
    expect(specProblems({ preset: 'satelite', latncy: '1ms', loss: { model: 'random', p: 2 }, disconnects: { downtime: '1s..2s' } })).toEqual([
      'latncy: unknown key; did you mean latency?',
      'preset: unknown preset "satelite"; did you mean satellite? (presets: lan, wifi, cellular-4g, cellular-3g, satellite, factory-floor)',
      'loss.p: expected a probability from 0 to 1 (or 0% to 100%), got 2',
      'disconnects.mtbf: required: the mean time between failures, e.g. mtbf: 2m',
    ]);
    expect(specProblems({ latency: { dist: 'gauss', mean: '1ms' } })).toEqual(['latency.dist: expected fixed, uniform, normal or pareto, got "gauss"']);
    expect(specProblems({ disconnects: { mtbf: '1m', downtime: '15s..2s' } })).toEqual(['disconnects.downtime: expected the lower end first, got "15s..2s"; write 2s..15s']);
    expect(specProblems({ bandwidth: '10 parsecs' })[0]).toMatch(/^bandwidth: expected a bandwidth like 1Mbit\/s/);
    expect(specProblems({ disconnects: { mtbf: '1m' }, failure: { reset: 0, halfOpen: 0, slowClose: 0 } })).toEqual(['failure: the weights add up to 0; give at least one of reset, halfOpen, slowClose a weight above 0']);
  });
});

describe('networks in a scenario', () => {
  it('resolves networks: entries and network: references (a name or a preset)', () => {
    const s = parseScenario(`${base}networks:
  field: { preset: cellular-4g, disconnects: { mtbf: 2m, downtime: 2s..15s } }
  plant: lan
fleets:
  - { name: a, count: 2, network: field, publish: { topic: "a/{id}", every: 1s } }
  - { name: b, count: 1, network: satellite, publish: { topic: "b/{id}", every: 1s } }
  - { name: c, count: 1, publish: { topic: "c/{id}", every: 1s } }
consumers:
  - { name: h, network: plant, subscribe: ["#"] }
`);
    expect(Object.keys(s.networks!)).toEqual(['field', 'plant']);
    expect(s.fleets[0]!.network).toEqual(resolveProfile({ preset: 'cellular-4g', disconnects: { mtbfMs: 120_000, downtimeMs: { min: 2000, max: 15_000 } } }));
    expect(s.fleets[0]!.networkName).toBe('field');
    expect(s.fleets[1]!.network).toEqual(presets.satellite);
    expect(s.fleets[2]!.network).toBeUndefined();
    expect(s.fleets[3]!.network).toEqual(presets.lan);
  });

  it('has no networks key when the file has no networks section', () => {
    const s = parseScenario(`${base}fleets:\n  - { name: a, count: 1, publish: { topic: "a/{id}", every: 1s } }\n`);
    expect('networks' in s).toBe(false);
    expect('network' in s.fleets[0]!).toBe(false);
  });

  it('reports unknown network names with the closest one, and problems inside networks with their path', () => {
    expect(problems(`${base}networks:
  field: { preset: cellular-4g, disconnects: { mtbf: 0, downtime: 1s } }
fleets:
  - { name: a, count: 1, network: field, publish: { topic: "a/{id}", every: 1s } }
`)).toEqual(['networks.field.disconnects.mtbf: expected a duration above 0, e.g. 2m (or disconnects: none)']);
    expect(problems(`${base}networks:
  field: cellular-4g
fleets:
  - { name: a, count: 1, network: feild, publish: { topic: "a/{id}", every: 1s } }
  - { name: b, count: 1, network: sattelite, publish: { topic: "b/{id}", every: 1s } }
`)).toEqual([
      'fleets[0].network: unknown network "feild"; did you mean field? (networks declared: field; presets: lan, wifi, cellular-4g, cellular-3g, satellite, factory-floor)',
      'fleets[1].network: unknown network "sattelite"; did you mean satellite? (networks declared: field; presets: lan, wifi, cellular-4g, cellular-3g, satellite, factory-floor)',
    ]);
    expect(problems(`${base}networks:
  field: cellular-5g
fleets:
  - { name: a, count: 1, publish: { topic: "a/{id}", every: 1s } }
`)).toEqual(['networks.field: unknown preset "cellular-5g"; did you mean cellular-4g? (presets: lan, wifi, cellular-4g, cellular-3g, satellite, factory-floor)']);
  });
});

/** A clock the test moves by hand; timers are not used by DeviceNetwork itself. */
function manualClock(): LinkClock & { t: number } {
  return { t: 1000, now() { return this.t; }, setTimeout: () => undefined, clearTimeout: () => undefined };
}

describe('the device network failure schedule', () => {
  const profile = resolveProfile({ preset: 'lan', disconnects: { mtbfMs: 1000, downtimeMs: { min: 100, max: 500 } } });

  function schedule(seed: number, untilMs: number): LinkEvent[] {
    const clock = manualClock();
    const events: LinkEvent[] = [];
    const network = new DeviceNetwork(profile, createPrng(seed, 2, 7), clock, (e) => events.push(e));
    for (let t = 0; t <= untilMs; t += 37) {
      clock.t = 1000 + t;
      network.advance(clock.t);
    }
    return events;
  }

  it('depends on the seed alone, however often it is looked at', () => {
    const a = schedule(42, 20_000);
    expect(a.length).toBeGreaterThan(5);
    expect(a.every((e) => e.type === 'failure')).toBe(true);
    // Failures are spaced by at least their downtime.
    for (let i = 1; i < a.length; i++) {
      const prev = a[i - 1] as Extract<LinkEvent, { type: 'failure' }>;
      expect(a[i]!.atMs).toBeGreaterThanOrEqual(prev.atMs + prev.downtimeMs);
    }
    const clock = manualClock();
    const coarse: LinkEvent[] = [];
    const network = new DeviceNetwork(profile, createPrng(42, 2, 7), clock, (e) => coarse.push(e));
    clock.t = 1000 + 20_000;
    network.advance(clock.t);
    expect(coarse.slice(0, a.length - 1)).toEqual(a.slice(0, a.length - 1));
    expect(schedule(43, 20_000).slice(0, 3)).not.toEqual(a.slice(0, 3));
  });

  it('draws modes by the failure weights', () => {
    const halfOpenOnly = resolveProfile({ disconnects: { mtbfMs: 100, downtimeMs: { min: 0, max: 0 } }, failure: { reset: 0, halfOpen: 1, slowClose: 0 } });
    const clock = manualClock();
    const modes = new Set<string>();
    const network = new DeviceNetwork(halfOpenOnly, createPrng(1), clock, (e) => e.type === 'failure' && modes.add(e.mode));
    clock.t += 10_000;
    network.advance(clock.t);
    expect([...modes]).toEqual(['halfOpen']);
  });
});

describe('how long deliveries can pause on a network (the drain waits longer than this before calling them done)', () => {
  it('is a round trip at the latency ceiling plus two retransmission stalls each way', () => {
    expect(latencyCeilingMs({ dist: 'fixed', ms: 7 })).toBe(7);
    expect(latencyCeilingMs({ dist: 'uniform', min: 1, max: 10 })).toBe(10);
    expect(latencyCeilingMs({ dist: 'pareto', min: 50, alpha: 2, max: 250 })).toBe(250);
    expect(latencyCeilingMs({ dist: 'normal', mean: 25, stddev: 6 })).toBe(49);
    expect(deliveryPauseMs(presets.lan)).toBe(0);
    // 3G: 250 ms ceiling + 20 ms jitter + 2 × 1 s stalls, each way.
    expect(deliveryPauseMs(presets['cellular-3g'])).toBe(2 * (250 + 20 + 2_000));
    expect(deliveryPauseMs(presets['cellular-3g'])).toBeGreaterThan(deliveryPauseMs(presets['cellular-4g']));
  });
});
