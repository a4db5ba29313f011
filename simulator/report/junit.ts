/**
 * junit.xml: the run as the JUnit XML that CI systems (GitHub Actions test reporters, GitLab, Jenkins)
 * read, a pure function of run.json. One test suite per run: a testcase for the run itself (an
 * <error> when it did not complete), one per `expect:` assertion and, when the delivery checker ran,
 * one per MQTT guarantee at each QoS that carried traffic.
 */
import { escapeMarkup as esc } from './escape.js';
import type { RunResult } from './run-result.js';
import { formatCount, formatDuration } from './summary.js';

export const junitReportFileName = 'junit.xml';

interface TestCase {
  classname: string;
  name: string;
  seconds: number;
  failure?: { message: string; type: string; details: string };
  error?: { message: string; type: string; details: string };
  skipped?: string;
}

function runSeconds(result: RunResult): number {
  const ms = Date.parse(result.finishedAt) - Date.parse(result.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : 0;
}

function runCase(result: RunResult): TestCase {
  const tc: TestCase = { classname: result.scenario.name, name: 'run completed', seconds: runSeconds(result) };
  if (result.outcome !== 'completed') {
    tc.error = {
      message: `the run ended ${result.outcome}`,
      type: result.outcome,
      details: result.errors.length > 0 ? result.errors.join('\n') : `outcome ${result.outcome}; see run.json`,
    };
  }
  return tc;
}

function assertionCases(result: RunResult): TestCase[] {
  return result.assertions.map((a) => {
    const tc: TestCase = { classname: result.scenario.name, name: a.source, seconds: 0 };
    if (!a.passed) {
      tc.failure = {
        message: a.message !== '' ? a.message : `${a.source} failed`,
        type: 'assertion',
        details: `assertion: ${a.source}\nmetric: ${a.metric}\nactual: ${a.actual === null ? 'no data' : String(a.actual)}\n${a.message}`,
      };
    }
    return tc;
  });
}

const qosTraffic = (c: NonNullable<RunResult['checker']>, q: 0 | 1 | 2): boolean => Object.values(c.byQos[q]).some((n) => n > 0);

/** The MQTT contract, one testcase per promise and QoS that carried messages. */
function guaranteeCases(result: RunResult): TestCase[] {
  const c = result.checker;
  if (c === undefined) return [];
  const classname = `${result.scenario.name}.guarantees`;
  const examples = (kind: string, qos: number | null): string => {
    const list = c.examples.filter((e) => e.kind === kind && (qos === null || e.qos === qos)).slice(0, 10);
    return list.map((e) => `${e.kind} qos${e.qos} ${e.publisherClientId} -> ${e.group ?? e.subscriberClientId ?? '?'} ${e.topic}${e.seq === null ? '' : ` seq ${e.seq}`}: ${e.detail}`).join('\n');
  };
  const promise = (name: string, count: number, what: string, kind: string, qos: number | null): TestCase => {
    const tc: TestCase = { classname, name, seconds: 0 };
    if (c.verdict === 'unchecked') tc.skipped = `not checked: ${c.notes[0] ?? 'no records to judge'}`;
    else if (count > 0) tc.failure = { message: `${formatCount(count)} ${what}`, type: 'violation', details: examples(kind, qos) || `${formatCount(count)} ${what}; examples in run.json` };
    return tc;
  };
  const cases: TestCase[] = [];
  if (qosTraffic(c, 0)) cases.push(promise('qos0 no duplicates', c.byQos[0].duplicated, 'QoS 0 messages duplicated', 'duplicated', 0));
  if (qosTraffic(c, 1)) cases.push(promise('qos1 no loss', c.byQos[1].lost, 'acknowledged QoS 1 messages lost', 'lost', 1));
  if (qosTraffic(c, 2)) {
    cases.push(promise('qos2 no loss', c.byQos[2].lost, 'acknowledged QoS 2 messages lost', 'lost', 2));
    cases.push(promise('qos2 no duplicates', c.byQos[2].duplicated, 'QoS 2 messages duplicated', 'duplicated', 2));
  }
  if (cases.length > 0) cases.push(promise('order per publisher and topic', c.violations.byKind.reordered, 'messages out of order on non-shared subscriptions', 'reordered', null));
  return cases;
}

function caseXml(tc: TestCase): string {
  const open = `    <testcase classname="${esc(tc.classname)}" name="${esc(tc.name)}" time="${tc.seconds.toFixed(3)}"`;
  const inner: string[] = [];
  if (tc.failure !== undefined) inner.push(`      <failure message="${esc(tc.failure.message)}" type="${esc(tc.failure.type)}">${esc(tc.failure.details)}</failure>`);
  if (tc.error !== undefined) inner.push(`      <error message="${esc(tc.error.message)}" type="${esc(tc.error.type)}">${esc(tc.error.details)}</error>`);
  if (tc.skipped !== undefined) inner.push(`      <skipped message="${esc(tc.skipped)}"/>`);
  return inner.length === 0 ? `${open}/>` : `${open}>\n${inner.join('\n')}\n    </testcase>`;
}

/** ISO 8601 without the zone designator and milliseconds, as the JUnit schema's timestamp wants. */
function junitTimestamp(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toISOString().slice(0, 19) : iso;
}

export function formatJunitReport(result: RunResult): string {
  const cases = [runCase(result), ...assertionCases(result), ...guaranteeCases(result)];
  const failures = cases.filter((c) => c.failure !== undefined).length;
  const errors = cases.filter((c) => c.error !== undefined).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const time = runSeconds(result).toFixed(3);
  const counts = `tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}"`;
  const env = result.environment;
  const properties = [
    ['seed', String(result.scenario.seed)],
    ['outcome', result.outcome],
    ['verdict', result.verdict],
    ['target', result.target.urls.join(', ')],
    ['duration', formatDuration(runSeconds(result) * 1000)],
    ['mqtt-sim', result.tool.version],
    ['node', env.node],
    ['cpus', `${env.cpus} x ${env.cpuModel}`],
    ['workers', String(env.workers)],
  ];
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="mqtt-sim" ${counts}>`,
    `  <testsuite name="${esc(result.scenario.name)}" ${counts} timestamp="${esc(junitTimestamp(result.startedAt))}" hostname="${esc(env.hostname)}">`,
    '    <properties>',
    ...properties.map(([name, value]) => `      <property name="${esc(name!)}" value="${esc(value!)}"/>`),
    '    </properties>',
    ...cases.map(caseXml),
  ];
  if (result.errors.length > 0) lines.push(`    <system-err>${esc(result.errors.join('\n'))}</system-err>`);
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
