/**
 * The reporter for logs and CI (no TTY): a progress line at most every few seconds of run time, events as
 * they come, the summary at the end. The line formatters are pure and exported; the reporter only
 * decides when to call them and hands the text to `write` (the CLI's stdout).
 */
import { join } from 'node:path';
import type { RunResult, TimelinePoint } from './run-result.js';
import type { Reporter, RunEvent, RunStartInfo } from './reporter.js';
import { formatCount, formatDuration, formatMs, formatPercent, formatSummary } from './summary.js';

export interface PlainReporterOptions {
  /** Least run time between two progress lines, ms (default 5000). */
  everyMs?: number;
}

/** The widest phase name ("ramp-down"), so progress lines stay aligned across phases. */
const phaseWidth = 9;

/** Run time as a right-aligned whole-second stamp: "[  12s]"-style, without the brackets. */
export function formatRunTime(atMs: number): string {
  return `${Math.floor(Math.max(0, atMs) / 1000)}s`.padStart(5);
}

export function formatStartLine(info: RunStartInfo): string {
  const s = info.scenario;
  const fleets = s.fleets.length;
  return (
    `mqtt-sim run "${s.name}": ${formatCount(info.devices)} devices in ${fleets} fleet${fleets === 1 ? '' : 's'} → ${info.targetDescription}, ` +
    `${info.workers} worker${info.workers === 1 ? '' : 's'}, ${formatDuration(s.durationMs)} (ramp-up ${formatDuration(s.phases.rampUpMs)}, ` +
    `steady ${formatDuration(s.phases.steadyMs)}, ramp-down ${formatDuration(s.phases.rampDownMs)}), seed ${s.seed}`
  );
}

export function formatPhaseLine(name: string, atMs: number): string {
  return `[${formatRunTime(atMs)}] phase ${name}`;
}

/** `[  12s steady   ] connected 3,100/3,100  out 3,412/s  in 6,800/s  e2e p50 3.1 ms p99 18 ms  reconnects 0` */
export function formatProgressLine(p: TimelinePoint, devices: number): string {
  const reconnects = Object.values(p.fleets).reduce((n, f) => n + f.reconnects, 0);
  return (
    `[${formatRunTime(p.atMs)} ${p.phase.padEnd(phaseWidth)}] connected ${formatCount(p.connected)}/${formatCount(devices)}` +
    `  out ${formatCount(p.publishedPerSec)}/s  in ${formatCount(p.deliveredPerSec)}/s` +
    `  e2e p50 ${formatMs(p.e2eP50Ms)} p99 ${formatMs(p.e2eP99Ms)}  reconnects ${formatCount(reconnects)}`
  );
}

/** Why a point counts as saturated, from its own figures (the orchestrator sets the flag). */
export function saturationReason(p: TimelinePoint): string {
  const g = p.generator;
  return `event-loop delay p99 ${formatMs(g.loopDelayP99Ms)}, schedule slip p99 ${formatMs(g.scheduleSlipP99Ms)}, cpu ${formatPercent(g.cpu)}`;
}

export function formatSaturationLine(p: TimelinePoint): string {
  return `[${formatRunTime(p.atMs)}] warn: generator saturated: ${saturationReason(p)} (latencies may be the generator's, not the broker's)`;
}

export function formatEventLine(e: RunEvent): string {
  const prefix = e.level === 'info' ? '' : `${e.level}: `;
  return `[${formatRunTime(e.atMs)}] ${prefix}${e.message}`;
}

export function formatReportLine(reportDir: string): string {
  return `report: ${join(reportDir, 'run.json')}`;
}

export function createPlainReporter(write: (text: string) => void, options: PlainReporterOptions = {}): Reporter {
  const everyMs = options.everyMs ?? 5000;
  let devices = 0;
  let lastPrintedAtMs: number | null = null;
  /** The latest saturated point since the last progress line, so a throttled-out warning is not lost. */
  let saturated: TimelinePoint | null = null;
  const line = (text: string): void => write(`${text}\n`);

  return {
    start(info) {
      devices = info.devices;
      line(formatStartLine(info));
    },
    phase(name, atMs) {
      line(formatPhaseLine(name, atMs));
    },
    point(p) {
      if (p.generator.saturated) saturated = p;
      if (lastPrintedAtMs !== null && p.atMs - lastPrintedAtMs < everyMs) return;
      lastPrintedAtMs = p.atMs;
      line(formatProgressLine(p, devices));
      if (saturated !== null) line(formatSaturationLine(saturated));
      saturated = null;
    },
    event(e) {
      line(formatEventLine(e));
    },
    finish(result: RunResult, reportDir) {
      write(`\n${formatSummary(result)}`);
      if (reportDir !== null) line(formatReportLine(reportDir));
    },
  };
}
