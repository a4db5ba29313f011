import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllCli, repoRoot, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const STACK_FRAME = /\n\s+at /;
const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-validate-'));

beforeAll(() => requireBuilt('cli/commands/validate.js'));
afterEach(() => killAllCli());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawnCli(args);
  const code = await cli.waitForExit();
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

describe('mqtt-sim validate (built CLI as a child process)', () => {
  it('prints the summary of a valid scenario and exits 0', async () => {
    const file = join(repoRoot, 'scenarios', 'smoke.yaml');
    const { code, stdout, stderr } = await run(['validate', file]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('scenario smoke is valid');
    expect(stdout).toContain('duration 8s: ramp-up 2s, steady 5s, ramp-down 1s');
    expect(stdout).toContain('target: embedded reference broker');
    expect(stdout).toMatch(/sensors-q1: sensor × 50, .* → 100 msg\/s/);
    expect(stdout).toMatch(/expected publish rate in steady state: \d+/);
  });

  it('applies --seed and --target', async () => {
    const { code, stdout } = await run(['validate', join(repoRoot, 'scenarios', 'smoke.yaml'), '--seed', '7', '--target', 'mqtt://broker.local']);
    expect(code).toBe(0);
    expect(stdout).toContain('seed 7');
    expect(stdout).toContain('target: mqtt://broker.local:1883 (MQTT 5)');
  });

  it('lists every problem with its YAML path on stderr and exits 2', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\nduration: 10s\nfleets:\n  - name: s\n    count: 1\n    publish: { topic: a, every: 1s, qos: 3 }\n    keepalive: 5\n');
    const { code, stdout, stderr } = await run(['validate', file]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${file} is not a valid scenario (2 problems):`);
    expect(stderr).toContain('fleets[0].publish.qos: expected 0, 1 or 2, got 3');
    expect(stderr).toContain('fleets[0].keepalive: expected a duration with a unit, got the plain number 5');
    expect(stderr).not.toMatch(STACK_FRAME);
  });

  it('names a missing file and exits 2', async () => {
    const missing = join(dir, 'missing.yaml');
    const { code, stderr } = await run(['validate', missing]);
    expect(code).toBe(2);
    expect(stderr).toContain(`cannot read scenario ${missing}: no such file`);
    expect(stderr).not.toMatch(STACK_FRAME);
  });

  it('rejects a bad --seed with exit 2', async () => {
    const { code, stderr } = await run(['validate', join(repoRoot, 'scenarios', 'smoke.yaml'), '--seed', 'abc']);
    expect(code).toBe(2);
    expect(stderr).toContain('--seed: expected an integer of 0 or more, got "abc"');
  });
});
