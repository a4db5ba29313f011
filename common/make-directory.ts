/**
 * `mkdir -p` that always ends. Node's own `mkdirSync(dir, { recursive: true })` spins forever at full CPU
 * when mkdir fails with ENOENT although the parent exists (as it does anywhere under /proc): a
 * `--report-dir` or `--data-dir` there hung the CLI after the whole run. This creates the missing folders
 * one by one, from the deepest one that exists, and throws the system error of the first that fails.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Creates `path` and any missing parents; a folder that exists already is fine. Returns the folders it
 * created, outermost first. Throws the failing step's error (ENOENT, EACCES, ENOTDIR, ...).
 */
export function makeDirectory(path: string): string[] {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    try {
      if (statSync(p).isDirectory()) break;
      // A file where a folder should be: mkdir names the problem (EEXIST / ENOTDIR).
      mkdirSync(p);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
    }
    missing.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  const created: string[] = [];
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
      created.push(dir);
    } catch (err) {
      // Made meanwhile by someone else: fine.
      if (codeOf(err) === 'EEXIST' && isDirectory(dir)) continue;
      throw err;
    }
  }
  return created;
}
