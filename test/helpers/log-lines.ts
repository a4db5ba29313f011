/**
 * Test helpers for the broker's structured log: pino JSON lines, captured from a destination stream
 * (in-process) or from a child's stderr, where they sit between the CLI's plain-text lines.
 */
import { withTimeout } from './broker.js';

/** One pino record: numeric level (10 trace … 60 fatal), message, and the broker's event fields. */
export interface LogRecord {
  level: number;
  msg: string;
  event?: string;
  [field: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value === 'object' && value !== null && typeof (value as LogRecord).level === 'number' && typeof (value as LogRecord).msg === 'string') {
      return value as LogRecord;
    }
  } catch {
    // Not a record: a plain line that happens to start with "{".
  }
  return undefined;
}

/** Splits stderr into the CLI's plain-text lines and the log records. */
export function splitStderr(text: string): { plain: string[]; records: LogRecord[] } {
  const plain: string[] = [];
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const record = parseRecord(line);
    if (record === undefined) plain.push(line);
    else records.push(record);
  }
  return { plain, records };
}

/**
 * What a broker that had no problem must not have written: any plain-text line, and any record at
 * warn or above (shown as "level event: msg" so a failure says what happened).
 */
export function stderrProblems(text: string): string[] {
  const { plain, records } = splitStderr(text);
  return [...plain, ...records.filter((r) => r.level >= LEVEL.warn).map((r) => `${r.level} ${r.event ?? ''}: ${r.msg}`)];
}

/** A pino destination that keeps every record and lets a test wait (bounded) for one. */
export interface LogCapture {
  /** The destination to pass to pino(options, destination). */
  readonly stream: { write(line: string): void };
  readonly records: LogRecord[];
  /** Resolves with the first record (earlier ones included) that matches; rejects after `ms`. */
  waitFor(match: (r: LogRecord) => boolean, what: string, ms?: number): Promise<LogRecord>;
}

export function captureLog(): LogCapture {
  const records: LogRecord[] = [];
  const waiters = new Set<() => void>();
  let pending = '';
  const stream = {
    write(chunk: string) {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const record = parseRecord(line);
        if (record === undefined) throw new Error(`not a JSON log record: ${line}`);
        records.push(record);
      }
      for (const check of [...waiters]) check();
    },
  };
  return {
    stream,
    records,
    waitFor(match, what, ms = 5000) {
      const found = records.find(match);
      if (found !== undefined) return Promise.resolve(found);
      let check!: () => void;
      return withTimeout(
        new Promise<LogRecord>((resolve) => {
          check = () => {
            const hit = records.find(match);
            if (hit === undefined) return;
            waiters.delete(check);
            resolve(hit);
          };
          waiters.add(check);
        }),
        ms,
        `no log record ${what}; got: ${records.map((r) => `${r.event ?? ''} ${r.msg}`).join(' | ') || '(none)'}`,
      ).finally(() => waiters.delete(check));
    },
  };
}
