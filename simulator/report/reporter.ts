/**
 * One reporter among several: the orchestrator drives whichever is chosen (plain progress lines when
 * not on a TTY, the dashboard on one, json for machines) through this interface, and never prints.
 */
import type { FleetCounters } from '../metrics/types.js';
import type { Scenario } from '../scenario/types.js';
import type { RunResult, TimelinePoint } from './run-result.js';

export interface RunStartInfo {
  scenario: Scenario;
  /** How the target reads in a sentence: "embedded reference broker mqtt://127.0.0.1:40123", "mqtts://broker:8883". */
  targetDescription: string;
  workers: number;
  /** Devices over every fleet (connections, not gateway sensors). */
  devices: number;
}

export interface RunEvent {
  /** Run time, ms from the start of the timeline. */
  atMs: number;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface Reporter {
  start(info: RunStartInfo): void;
  /** A phase began (prepare, ramp-up, steady, ramp-down, drain) at run time `atMs`. */
  phase(name: string, atMs: number): void;
  /**
   * One merged snapshot, about every second. `live`: the cumulative counters per fleet at that moment
   * (what the dashboard's QoS panel shows during the run; the timeline point only carries rates).
   */
  point(p: TimelinePoint, live?: Readonly<Record<string, FleetCounters>>): void;
  event(e: RunEvent): void;
  /** The run is over; `reportDir` is where run.json was written (null when no report was written). */
  finish(result: RunResult, reportDir: string | null): void;
}
