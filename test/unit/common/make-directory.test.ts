import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeDirectory } from '../../../common/make-directory.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-mkdir-'));
  dirs.push(dir);
  return dir;
}

describe('makeDirectory', () => {
  it('creates the folder and its missing parents, and accepts one that exists', () => {
    const base = temp();
    const deep = join(base, 'a', 'b', 'c');
    expect(makeDirectory(deep)).toEqual([join(base, 'a'), join(base, 'a', 'b'), deep]);
    expect(statSync(deep).isDirectory()).toBe(true);
    expect(makeDirectory(deep)).toEqual([]);
    makeDirectory(base);
    expect(statSync(deep).isDirectory()).toBe(true);
  });

  it('throws the system error when a file stands where a folder should be', () => {
    const base = temp();
    writeFileSync(join(base, 'file'), 'x');
    expect(() => makeDirectory(join(base, 'file'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => makeDirectory(join(base, 'file', 'sub'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });

  // Node's mkdirSync(dir, { recursive: true }) never returns for this path (it retries the ENOENT forever).
  it.runIf(existsSync('/proc/self'))('throws ENOENT, at once, where mkdir fails although the parent exists (/proc)', () => {
    expect(() => makeDirectory('/proc/mqtt-sim-report/run')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
