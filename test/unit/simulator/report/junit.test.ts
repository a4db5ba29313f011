import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatJunitReport } from '../../../../simulator/report/junit.js';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
const decode = (s: string): string => s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => entities[e]!);

/**
 * A minimal XML reader, enough to check the JUnit shape: elements, attributes, text; throws on a
 * mismatched tag, a raw `<` or `&` in text, or an unquoted attribute.
 */
function parseXml(xml: string): XmlElement {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const root: XmlElement = { name: '#root', attributes: {}, children: [], text: '' };
  const stack = [root];
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = token.exec(body)) !== null) {
    consumed = token.lastIndex;
    const top = stack[stack.length - 1]!;
    if (m[5] !== undefined) {
      if (/&(?!(amp|lt|gt|quot|#39);)/.test(m[5])) throw new Error(`raw & in text: ${m[5]}`);
      top.text += decode(m[5]);
      continue;
    }
    const [, closing, name, attrs, selfClosing] = m;
    if (closing === '/') {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const [, k, v] of attrs!.matchAll(/([\w:.-]+)="([^"]*)"/g)) attributes[k!] = decode(v!);
    const element: XmlElement = { name: name!, attributes, children: [], text: '' };
    top.children.push(element);
    if (selfClosing !== '/') stack.push(element);
  }
  if (consumed !== body.length) throw new Error(`not XML at ${consumed}: ${body.slice(consumed, consumed + 40)}`);
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error('expected one root element');
  return root.children[0]!;
}

const testcases = (suite: XmlElement): XmlElement[] => suite.children.filter((c) => c.name === 'testcase');

describe('formatJunitReport (junit.xml)', () => {
  it('matches the golden junit.xml of the fixture run', async () => {
    await expect(formatJunitReport(fixture())).toMatchFileSnapshot('./__snapshots__/junit.xml');
  });

  it('has the testsuites / testsuite / testcase / failure shape CI systems read, with consistent counts', () => {
    const root = parseXml(formatJunitReport(fixture()));
    expect(root.name).toBe('testsuites');
    const suite = root.children.find((c) => c.name === 'testsuite')!;
    for (const attr of ['name', 'tests', 'failures', 'errors', 'skipped', 'time', 'timestamp']) expect(suite.attributes, attr).toHaveProperty(attr);
    expect(suite.attributes['name']).toBe('pipeline-small');
    expect(suite.attributes['timestamp']).toBe('2025-03-01T10:00:00');
    expect(suite.attributes['time']).toBe('65.400');
    const cases = testcases(suite);
    expect(cases.map((c) => c.attributes['name'])).toEqual(['run completed', 'qos1.lost == 0', 'latency.e2e.p99 < 15ms', 'qos1 no loss', 'order per publisher and topic']);
    expect(cases.every((c) => c.attributes['classname']?.startsWith('pipeline-small') && c.attributes['time'] !== undefined)).toBe(true);
    expect(Number(suite.attributes['tests'])).toBe(cases.length);
    const failed = cases.filter((c) => c.children.some((x) => x.name === 'failure'));
    expect(Number(suite.attributes['failures'])).toBe(failed.length);
    expect(failed.map((c) => c.attributes['name'])).toEqual(['latency.e2e.p99 < 15ms']);
    const failure = failed[0]!.children[0]!;
    expect(failure.attributes['message']).toBe('latency.e2e.p99 is 17.8 ms, expected < 15 ms');
    expect(failure.text).toContain('actual: 17.8');
    expect(root.attributes['tests']).toBe(suite.attributes['tests']);
  });

  it('turns checker violations into failing guarantee testcases with examples', () => {
    const result = fixture();
    result.checker!.byQos[1].lost = 2;
    result.checker!.verdict = 'fail';
    result.checker!.examples = [{
      kind: 'lost', stream: 1, seq: 9, publisherClientId: 'p-1', group: '$share/hist/x', topic: 't/<1>', qos: 1, publishedQos: 1, publishedAtBracket: null, detail: 'never received',
    }];
    const suite = parseXml(formatJunitReport(result)).children[0]!;
    const loss = testcases(suite).find((c) => c.attributes['name'] === 'qos1 no loss')!;
    const failure = loss.children.find((c) => c.name === 'failure')!;
    expect(failure.attributes['message']).toBe('2 acknowledged QoS 1 messages lost');
    expect(failure.text).toContain('p-1 -> $share/hist/x t/<1> seq 9: never received');
  });

  it('reports a run that did not complete as an error and an unchecked checker as skipped', () => {
    const result = fixture();
    result.outcome = 'aborted';
    result.errors = ['interrupted & stopped'];
    result.checker!.verdict = 'unchecked';
    const root = parseXml(formatJunitReport(result));
    const suite = root.children[0]!;
    expect(suite.attributes['errors']).toBe('1');
    expect(suite.attributes['skipped']).toBe('2');
    const run = testcases(suite)[0]!;
    expect(run.children[0]!.name).toBe('error');
    expect(run.children[0]!.attributes['message']).toBe('the run ended aborted');
    expect(suite.children.find((c) => c.name === 'system-err')!.text).toBe('interrupted & stopped');
  });

  it('escapes XML in names and drops characters XML cannot carry', () => {
    const result = fixture();
    result.scenario.name = 'a"b<c>&\u0001';
    const xml = formatJunitReport(result);
    expect(xml).toContain('name="a&quot;b&lt;c&gt;&amp;\uFFFD"');
    expect(parseXml(xml).children[0]!.attributes['name']).toBe('a"b<c>&\uFFFD');
  });
});
