import { describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/app.js';
import { packageVersion } from '../../../cli/version.js';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('mqtt-sim CLI', () => {
  it('--help prints usage and the exit codes, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('mqtt-sim <command> [options]');
    expect(r.stdout).toContain('Exit codes: 0 ok');
    expect(r.stderr).toBe('');
  });

  it('--version prints the package version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(packageVersion());
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('an unknown flag is bad usage (exit 2) with a message and no stack trace', async () => {
    const r = await run(['--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown argument: bogus');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unknown command is bad usage (exit 2)', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/frobnicate/);
  });
});
