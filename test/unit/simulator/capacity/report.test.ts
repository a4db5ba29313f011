import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fitCostModel } from '../../../../simulator/capacity/cost-model.js';
import { formatCapacityHtml, writeCapacityReport } from '../../../../simulator/capacity/report.js';
import type { CapacityResult } from '../../../../simulator/capacity/types.js';
import { escapeMarkup } from '../../../../simulator/report/escape.js';
import { capacityResult, errorCapacityResult, outageCapacityResult } from './fixture-capacity.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mqtt-sim-capacity-'));
  dirs.push(d);
  return d;
}

/** The aria-labels of the page's charts, in order. */
const chartTitles = (html: string): string[] => [...html.matchAll(/<svg class="chart" [^>]*aria-label="([^"]*)"/g)].map((m) => m[1]!);
/** The legend entries of the chart with that title. */
function legendOf(html: string, title: string): string[] {
  const start = html.indexOf(`aria-label="${title}"`);
  const svg = html.slice(start, html.indexOf('</svg>', start));
  return [...svg.matchAll(/<text [^>]*class="legend">([^<]*)<\/text>/g)].map((m) => m[1]!);
}

describe('formatCapacityHtml', () => {
  it('draws throughput and latency per step and CPU and memory against devices, with the knee marked', () => {
    const html = formatCapacityHtml(capacityResult());
    expect(chartTitles(html)).toEqual(['Throughput per step', 'End-to-end latency per step', 'CPU against devices', 'Memory against devices']);
    expect(legendOf(html, 'Throughput per step')).toEqual(['offered/s', 'published/s', 'delivered/s', 'knee: 1,600 devices']);
    expect(legendOf(html, 'End-to-end latency per step')).toEqual(['e2e p99', 'SLO latency.e2e.p99&lt;250ms', 'knee: 1,600 devices']);
    expect(legendOf(html, 'CPU against devices')).toEqual(['simulator', 'simulator fit', 'broker', 'broker fit', 'knee: 1,600 devices']);
    expect(legendOf(html, 'Memory against devices')).toEqual(['simulator', 'simulator fit', 'broker', 'broker fit', 'knee: 1,600 devices']);
    // The load past the knee is shaded on each chart: the SLO broke there.
    expect(html.match(/class="band-beyond"><title>past the knee<\/title>/g)).toHaveLength(4);
    expect(html).toContain('<span class="verdict pass">KNEE 1,600 DEVICES</span>');
    expect(html).toContain('Knee: step 3, 1,600 devices, 1,600 msg/s offered, 3,200 delivered/s.');
  });

  it('lists the steps, the fitted model and the extrapolation with every assumption beside its numbers', () => {
    const result = capacityResult();
    const html = formatCapacityHtml(result);
    expect(html).toContain('<td>3 knee</td>');
    expect(html).toContain('<td>simulator CPU</td><td>0.5 mcore/device + 0.02 cores</td><td>3 steps, 400..1,600 devices</td>');
    expect(html).toContain('<li>left out: step 4, past the knee (2,400 &gt; 1,600 devices)');
    expect(html).toContain('<h2>Extrapolation to 1,000,000 devices</h2>');
    expect(html).toContain('<tr><th>devices per shard</th><td>1,960, bounded by CPU (alone: file descriptors 19,936, memory 203,571)</td></tr>');
    expect(html).toContain('<tr><th>shards</th><td>511</td></tr>');
    const assumptions = html.slice(html.indexOf('<ul class="assumptions">'));
    for (const a of result.extrapolation!.assumptions) expect(assumptions).toContain(`<li>${escapeMarkup(a)}</li>`);
    expect(html).toContain('<a href="step-2/run.json">step-2/run.json</a> · <a href="step-2/report.html">step-2/report.html</a>');
  });

  it('names an SLO threshold far above every step in the caption instead of flattening the latency line', () => {
    const result = capacityResult();
    for (const s of result.steps) s.slo[0] = { ...s.slo[0]!, source: 'latency.e2e.p99<5s' };
    const html = formatCapacityHtml(result);
    expect(legendOf(html, 'End-to-end latency per step')).toEqual(['e2e p99', 'knee: 1,600 devices']);
    expect(html).toContain('The SLO threshold latency.e2e.p99&lt;5s is far above every step, off the chart.');
  });

  it('is self-contained: no script, no fetched resource', () => {
    const html = formatCapacityHtml(capacityResult());
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(|@import|https?:\/\//i);
  });

  it('escapes every text from the run', () => {
    const result = capacityResult('<script>alert("x")</script> & co');
    result.steps[3]!.unstableReason = 'backlog <grew> & "kept growing"';
    result.steps[3]!.stable = false;
    result.steps[3]!.runJson = 'step-4/"><b>run.json';
    const html = formatCapacityHtml(result);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<grew>');
    expect(html).not.toContain('"><b>');
    expect(html).toContain('<h1>Capacity: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</h1>');
    expect(html).toContain('step 4: did not settle: backlog &lt;grew&gt; &amp; &quot;kept growing&quot;');
    expect(html).toContain('href="step-4/&quot;&gt;&lt;b&gt;run.json"');
  });

  it('without broker data has no broker lines, and without a knee no knee mark', () => {
    const base = capacityResult();
    const steps = base.steps.map(({ broker: _b, ...s }) => ({ ...s, sloMet: false }));
    const result: CapacityResult = { ...base, steps, knee: null, costModel: fitCostModel(steps, null) };
    delete result.extrapolation;
    const html = formatCapacityHtml(result);
    expect(legendOf(html, 'CPU against devices')).toEqual(['simulator', 'simulator fit']);
    expect(html).not.toContain('knee:');
    expect(html).not.toContain('band-beyond"');
    expect(html).toContain('<span class="verdict fail">NO KNEE</span>');
    expect(html).toContain('No extrapolation (no --target-devices).');
  });

  it('says in a red box which step failed, why, and what that means for the knee', () => {
    const result = errorCapacityResult();
    const html = formatCapacityHtml(result);
    expect(html).toContain('<span class="verdict pass">KNEE 1,000 DEVICES</span> <span class="verdict fail">STEP 3 FAILED</span>');
    expect(html).toContain(`<div class="callout bad"><strong>The ramp stopped because step 3 failed: the target became unreachable</strong><p>${escapeMarkup(result.error!.message)}</p><p>The ramp stopped early: step 3`);
    expect(html).toContain('the knee is the largest step that passed before it, a lower bound: the load where the SLO breaks was not reached.</p></div>');
    expect(html).toContain('<li>step 3 (1,600 devices, 1,600 msg/s offered): no result, the target became unreachable; the ramp stopped there</li>');
    // No step broke the SLO, so nothing is shaded as past the knee.
    expect(html).not.toContain('band-beyond"');
    expect(formatCapacityHtml(capacityResult())).not.toContain('<div class="callout');
  });

  it('says in a red box that the target stopped answering during a step, with that step\'s run', () => {
    const result = outageCapacityResult();
    const html = formatCapacityHtml(result);
    expect(html).toContain('<span class="verdict fail">STEP 3 FAILED</span>');
    expect(html).toContain(`<div class="callout bad"><strong>The ramp stopped because the target stopped answering during step 3: an outage, not a capacity limit</strong><p>${escapeMarkup(result.error!.message)}</p><p>The ramp stopped early: the target stopped answering during step 3`);
    expect(html).toContain('<p>Its run, with the disconnects and errors it saw: <a href="step-3/run.json">step-3/run.json</a> · <a href="step-3/report.html">step-3/report.html</a></p></div>');
    expect(html).toContain('<li>step 3 (1,600 devices, 1,600 msg/s offered): left out, the target stopped answering during it (an outage, not a capacity limit); the ramp stopped there</li>');
  });

  it('is the same page for the same result', () => {
    expect(formatCapacityHtml(capacityResult())).toBe(formatCapacityHtml(capacityResult()));
  });
});

describe('writeCapacityReport', () => {
  it('writes capacity.json (pretty, round-trips) and report.html, creating the folder', () => {
    const dir = join(tempDir(), 'reports', 'pipeline-capacity-20250301-100000');
    const result = capacityResult();
    const outcome = writeCapacityReport(dir, result);
    expect(outcome).toEqual({ jsonPath: join(dir, 'capacity.json'), problems: [] });
    const text = readFileSync(outcome.jsonPath, 'utf8');
    expect(text.startsWith('{\n  "schemaVersion": 1,\n')).toBe(true);
    expect(JSON.parse(text)).toEqual(result);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toBe(formatCapacityHtml(result));
    expect(readdirSync(dir).sort()).toEqual(['capacity.json', 'report.html']); // no temporary file left
  });

  it('reports an unwritable folder as a problem instead of throwing', () => {
    // As root a chmod'ed folder stays writable, so root gets a folder that nobody may create: one in sysfs.
    const root = process.getuid?.() === 0;
    const dir = root ? '/sys/mqtt-sim-capacity-test' : tempDir();
    if (!root) chmodSync(dir, 0o500);
    const outcome = writeCapacityReport(dir, capacityResult());
    expect(outcome.jsonPath).toBe(join(dir, 'capacity.json'));
    expect(outcome.problems.length).toBeGreaterThan(0);
    expect(outcome.problems[0]).toMatch(new RegExp(`^cannot (create the report folder ${dir}|write ${join(dir, 'capacity.json')}): .*(EACCES|EPERM).*use --json to get the result on stdout`));
    expect(existsSync(join(dir, 'capacity.json'))).toBe(false);
  });

  it('keeps capacity.json when report.html cannot be written', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'report.html')); // a folder in the way
    const outcome = writeCapacityReport(dir, capacityResult());
    expect(outcome.problems).toEqual([expect.stringMatching(new RegExp(`^cannot write ${join(dir, 'report.html')}: .*EISDIR.*; ${join(dir, 'capacity.json')} is complete$`))]);
    expect(JSON.parse(readFileSync(join(dir, 'capacity.json'), 'utf8'))).toEqual(capacityResult());
  });
});
