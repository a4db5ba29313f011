import { accessSync, constants, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> };

describe('the mqtt-sim bin', () => {
  it('is built, starts with a node shebang and is executable (npx runs it directly)', () => {
    const bin = new URL(`../../${pkg.bin['mqtt-sim']}`, import.meta.url);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
    expect(() => accessSync(bin, constants.X_OK)).not.toThrow();
  });
});
