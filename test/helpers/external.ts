/**
 * Test helpers for suites that need programs from outside the project (mosquitto clients, the
 * mosquitto broker, Python with paho-mqtt).
 *
 * A missing program skips the suite with a visible reason — a skipped test named after it and a
 * warning on the console — so "0 failures" never hides "0 interop tests ran". In CI, set
 * MQTT_SIM_REQUIRE_EXTERNAL=1: a missing program then fails the run with the same message.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';

/** `true` when the program is usable; otherwise `false` or a message saying what is missing and how to install it. */
export type Probe = () => boolean | string;

/** True when missing external programs must fail the run instead of skipping (MQTT_SIM_REQUIRE_EXTERNAL=1). */
export function externalProgramsRequired(): boolean {
  return process.env.MQTT_SIM_REQUIRE_EXTERNAL === '1';
}

/**
 * Runs `probe` and says whether the suite needing `name` can run; use it as `describe.skipIf(!available)`.
 *
 * When the program is missing, a test is registered that shows why: skipped, named "skipped: <reason>",
 * or — with MQTT_SIM_REQUIRE_EXTERNAL=1 — failing with that reason. Call it where tests may be
 * registered: at the top level of a test file or inside a describe callback.
 */
export function requireProgram(name: string, probe: Probe): boolean {
  let result: boolean | string;
  try {
    result = probe();
  } catch (err) {
    result = `${name}: the probe failed (${err instanceof Error ? err.message : String(err)})`;
  }
  if (result === true) return true;
  const reason = typeof result === 'string' ? result : `${name} not found`;
  if (externalProgramsRequired()) {
    it(`${name} is required (MQTT_SIM_REQUIRE_EXTERNAL=1)`, () => {
      throw new Error(`${reason} (MQTT_SIM_REQUIRE_EXTERNAL=1 turns a missing program into a failure)`);
    });
  } else {
    console.warn(`skipped: ${reason}`);
    it.skip(`skipped: ${reason}`, () => {});
  }
  return false;
}

/** The absolute path of an executable found on PATH, or undefined. */
export function findOnPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, program);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Python that sees the Debian package python3-paho-mqtt (a pyenv or venv python3 first on PATH may not). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Where the mosquitto broker is installed by the Debian package (sbin is often not on a user's PATH). */
const MOSQUITTO_BROKER_PATHS = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto'];

/** Probes for the external programs the interop suites use; each names the package that provides it. */
export const probes = {
  /** mosquitto_pub and mosquitto_sub on PATH. */
  mosquittoClients: (): boolean | string => {
    const missing = ['mosquitto_pub', 'mosquitto_sub'].filter((p) => findOnPath(p) === undefined);
    if (missing.length === 0) return true;
    return `${missing.join(' and ')} not found on PATH — apt-get install mosquitto-clients`;
  },
  /** The mosquitto broker, in /usr/sbin or on PATH. */
  mosquittoBroker: (): boolean | string => {
    if (mosquittoBrokerPath() !== undefined) return true;
    return `mosquitto (the broker) not found in ${MOSQUITTO_BROKER_PATHS.join(' or ')} or on PATH — apt-get install mosquitto`;
  },
  /** /usr/bin/python3 can import paho.mqtt.client. */
  pahoPython: (): boolean | string => {
    if (!isExecutable(SYSTEM_PYTHON)) return `${SYSTEM_PYTHON} not found — apt-get install python3 python3-paho-mqtt`;
    const run = spawnSync(SYSTEM_PYTHON, ['-c', 'import paho.mqtt.client'], { timeout: 10_000, encoding: 'utf8' });
    if (run.status === 0) return true;
    const why = run.error?.message ?? (run.stderr.trim().split('\n').pop() || `exit status ${String(run.status)}`);
    return `paho-mqtt not importable by ${SYSTEM_PYTHON} (${why}) — apt-get install python3-paho-mqtt`;
  },
};

/** The mosquitto broker executable, or undefined when it is not installed. */
export function mosquittoBrokerPath(): string | undefined {
  return MOSQUITTO_BROKER_PATHS.find(isExecutable) ?? findOnPath('mosquitto');
}
