/** Test helpers: scrape a Prometheus endpoint (node:http, bounded) and read the text format. */
import http from 'node:http';
import { withTimeout } from './broker.js';

export interface HttpResult {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** One request without connection reuse (no agent), so nothing stays open after the test. */
export function httpRequest(port: number, path: string, method = 'GET', ms = 5000): Promise<HttpResult> {
  return withTimeout(
    new Promise<HttpResult>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    }),
    ms,
    `${method} http://127.0.0.1:${port}${path} did not answer`,
  );
}

/** The samples of a scrape, keyed as they are written: `name` or `name{label="value",...}`. */
export type Samples = Map<string, number>;

export function parseSamples(body: string): Samples {
  const samples: Samples = new Map();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** `# TYPE name kind` lines: every metric family with its type. */
export function metricTypes(body: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
  return types;
}

/** GET /metrics, checked for status 200, parsed. */
export async function scrape(port: number): Promise<{ body: string; samples: Samples }> {
  const res = await httpRequest(port, '/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${res.body}`);
  return { body: res.body, samples: parseSamples(res.body) };
}

/** A sample's value; a missing sample fails with the names that do exist. */
export function sample(samples: Samples, key: string): number {
  const value = samples.get(key);
  if (value === undefined) {
    const family = key.split('{')[0]!;
    const near = [...samples.keys()].filter((k) => k.startsWith(family));
    throw new Error(`no sample ${key}; ${family} has: ${near.join(', ') || 'nothing'}`);
  }
  return value;
}
