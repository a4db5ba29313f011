import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatHtmlReport } from '../../../../simulator/report/html.js';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

/** The fixture with a fleet renamed everywhere the reports read the name. */
function withFleetName(result: RunResult, from: string, to: string): RunResult {
  result.fleets[to] = result.fleets[from]!;
  delete result.fleets[from];
  result.scenario.fleets.find((f) => f.name === from)!.name = to;
  result.latency[`e2e@${to}`] = result.latency[`e2e@${from}`]!;
  delete result.latency[`e2e@${from}`];
  return result;
}

describe('formatHtmlReport (report.html, a pure printer of run.json)', () => {
  it('matches the golden report of the fixture run', async () => {
    await expect(formatHtmlReport(fixture())).toMatchFileSnapshot('./__snapshots__/report.html');
  });

  it('is one self-contained document: inline style, no script, no external resource', () => {
    const html = formatHtmlReport(fixture());
    expect(html.startsWith('<!DOCTYPE html>\n')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    // No attribute points anywhere but inside the page.
    for (const [, value] of html.matchAll(/\s(?:href|src|xlink:href|action)="([^"]*)"/g)) expect(value).toMatch(/^#/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('draws the throughput, connected and latency charts and the HDR percentile plot as inline SVG', () => {
    const html = formatHtmlReport(fixture());
    expect(html.match(/<svg /g)?.length).toBe(4);
    expect(html).toContain('aria-label="Throughput over time"');
    expect(html).toContain('aria-label="Connected devices over time"');
    expect(html).toContain('aria-label="Latency by percentile"');
    // The percentile axis of the HDR plot, and the e2e curve from the decoded histogram (6 samples).
    for (const tick of ['0%', '90%', '99%']) expect(html).toContain(`text-anchor="middle">${tick}</text>`);
    expect(html).toContain('e2e (6)');
  });

  it('has the summary, fleets, latency, guarantees, assertions and environment tables', () => {
    const html = formatHtmlReport(fixture());
    for (const id of ['summary', 'fleets', 'latency', 'guarantees', 'assertions', 'environment']) expect(html).toContain(`<section id="${id}">`);
    expect(html).toContain('<td class="code">latency.e2e.p99 &lt; 15ms</td>');
    expect(html).toContain('<span class="verdict fail">FAIL</span>');
    expect(html).toContain('Generator saturated');
  });

  it('says under the guarantees table what the indeterminate messages are made of', () => {
    expect(formatHtmlReport(fixture())).not.toContain('Indeterminate:');
    const result = fixture();
    result.checker!.byQos[1].indeterminate = 5;
    result.checker!.indeterminateCauses = [
      { unacknowledged: 0, boundary: 0 },
      { unacknowledged: 0, boundary: 5 },
      { unacknowledged: 0, boundary: 0 },
    ];
    expect(formatHtmlReport(result)).toContain('<p class="note">Indeterminate: 5 sent while a subscriber was subscribing, losing its link or the run was ending');
  });

  it('escapes a <script> injected in a fleet name, a scenario name and an error', () => {
    const result = withFleetName(fixture(), 'historian', '<script>alert("x")</script>');
    result.scenario.name = 'a & b <img src=x onerror=alert(1)>';
    result.errors = ['</td><script>bad()</script>'];
    const html = formatHtmlReport(result);
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('<h1>a &amp; b &lt;img src=x onerror=alert(1)&gt;</h1>');
    expect(html).toContain('&lt;/td&gt;&lt;script&gt;bad()&lt;/script&gt;');
  });

  it('marks chaos actions, violations and reconnect spikes on the timeline and lists them as events', () => {
    const result = fixture();
    result.chaos = [{ atMs: 20_000, action: 'broker-kill', outcome: 'ok', detail: 'killed pid 48213', endMs: 24_000 }];
    const t0 = Date.parse(result.startedAt);
    result.checker!.examples = [{
      kind: 'lost', stream: 1, seq: 7, publisherClientId: 'pressure-sensors-7', group: '$share/hist/pipeline/+/pressure/#', topic: 'pipeline/north/pressure/pressure-sensors-7',
      qos: 1, publishedQos: 1, publishedAtBracket: [t0 + 21_000, t0 + 21_050], detail: 'acknowledged, never received',
    }];
    const html = formatHtmlReport(result);
    // Three timeline charts, each with the chaos line, the violation and the two reconnect spikes of the fixture.
    expect(html.match(/class="m-line m-chaos"/g)?.length).toBe(3);
    expect(html.match(/class="m-line m-violation"/g)?.length).toBe(3);
    expect(html.match(/class="m-reconnect-fill"/g)?.length).toBe(6);
    expect(html).toContain('class="band-chaos"');
    expect(html).toContain('<td class="nowrap">20.0 s – 24.0 s</td>');
    expect(html).toContain('<td class="kind-violation">violation</td>');
  });

  it('says so instead of drawing when there is no timeline or histogram', () => {
    const result = fixture();
    result.timeline = [];
    result.histograms = {};
    const html = formatHtmlReport(result);
    expect(html).toContain('The run has no timeline');
    expect(html).toContain('No latency histograms in this run.json.');
    expect(html).not.toContain('<svg');
  });

  it('reports an undecodable histogram instead of failing', () => {
    const result = fixture();
    result.histograms['e2e.qos1'] = 'not base64 at all';
    expect(formatHtmlReport(result)).toContain('Could not decode the histogram e2e.qos1.');
  });
});
