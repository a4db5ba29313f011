/**
 * deploy/k8s cannot be run here (no cluster), so this checks what would break it: every manifest parses,
 * the Indexed Job and the merge agree on the number of slices, the slice argument comes from
 * JOB_COMPLETION_INDEX, every slice gets the shared start run.sh stores, volumes match their mounts and
 * the claim, the kustomizations name files that exist, the scenario is valid, and the Dockerfile's entry
 * point is a file its build produces. run.sh itself runs against a stand-in kubectl that records its calls.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseScenario } from '../../../simulator/scenario/load.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const k8s = join(root, 'deploy', 'k8s');

interface Manifest {
  file: string;
  doc: Record<string, unknown>;
}

/** Every YAML file under deploy/k8s, recursively. */
function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** Kubernetes objects and kustomizations (the scenario under scenario/ is not one). */
function manifests(): Manifest[] {
  return yamlFiles(k8s)
    .filter((f) => !relative(k8s, f).startsWith('scenario'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
        expect(d.errors, `${file}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
        return { file, doc: d.toJS() as Record<string, unknown> };
      }),
    );
}

/** Manifests are untyped YAML. */
type Obj = Record<string, any>;

function find(kind: string, name: string): Obj {
  const found = manifests().filter((m) => m.doc['kind'] === kind && (m.doc['metadata'] as Obj | undefined)?.['name'] === name);
  expect(found, `${kind}/${name} in deploy/k8s`).toHaveLength(1);
  return found[0]!.doc as Obj;
}

function kustomization(dir: string): Obj {
  return parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
}

/** The one container of a Job and its shell script (command sh -c, script in args). */
function script(job: Obj): { container: Obj; text: string } {
  const containers = job['spec']['template']['spec']['containers'] as Obj[];
  expect(containers).toHaveLength(1);
  const container = containers[0]!;
  expect(container['command']).toEqual(['/bin/sh', '-c']);
  return { container, text: (container['args'] as string[]).join('\n') };
}

/** Each volume mount names a volume of the pod; returns mountPath → volume. */
function mounts(job: Obj, container: Obj): Map<string, Obj> {
  const volumes = new Map((job['spec']['template']['spec']['volumes'] as Obj[]).map((v) => [v['name'] as string, v]));
  const out = new Map<string, Obj>();
  for (const m of container['volumeMounts'] as Obj[]) {
    const volume = volumes.get(m['name']);
    expect(volume, `volume ${m['name']} of mount ${m['mountPath']}`).toBeDefined();
    out.set(m['mountPath'], volume!);
  }
  return out;
}

describe('deploy/k8s manifests', () => {
  it('parse, and each is a Kubernetes object or a kustomization without a namespace', () => {
    const all = manifests();
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const { file, doc } of all) {
      expect(typeof doc['apiVersion'], `${file}: apiVersion`).toBe('string');
      expect(typeof doc['kind'], `${file}: kind`).toBe('string');
      expect((doc['metadata'] as Obj | undefined)?.['namespace'], `${file}: namespace-agnostic`).toBeUndefined();
      expect(doc['namespace'], `${file}: namespace-agnostic`).toBeUndefined();
    }
  });

  it('the kustomizations list files that exist and use the same image', () => {
    for (const dir of [k8s, join(k8s, 'merge')]) {
      const k = kustomization(dir);
      expect(k['kind']).toBe('Kustomization');
      for (const r of k['resources'] as string[]) expect(existsSync(join(dir, r)), `${dir}: resource ${r}`).toBe(true);
    }
    expect(kustomization(k8s)['images']).toEqual(kustomization(join(k8s, 'merge'))['images']);
    // The merge Job must not start with the slices: it is applied after them, from its own kustomization.
    expect(kustomization(k8s)['resources']).not.toContain('merge/merge-job.yaml');
  });

  it('the Indexed Job runs slice JOB_COMPLETION_INDEX+1 of N, N = completions = parallelism, into the shared claim', () => {
    const job = find('Job', 'mqtt-sim-shards');
    const spec = job['spec'];
    expect(job['apiVersion']).toBe('batch/v1');
    expect(spec['completionMode']).toBe('Indexed');
    expect(Number.isInteger(spec['completions'])).toBe(true);
    expect(spec['parallelism']).toBe(spec['completions']);
    expect(spec['template']['spec']['restartPolicy']).toBe('Never');
    const n = spec['completions'] as number;

    const { container, text } = script(job);
    expect(text).toContain(`--shard "$((JOB_COMPLETION_INDEX + 1))/${n}"`);
    expect(text).toMatch(/--target \S+/);
    expect(text).toContain('--no-dashboard');
    expect(text).toContain('--report-dir "$dir"');
    expect(text).toContain('dir="/results/shard-$JOB_COMPLETION_INDEX"');

    // The scenario from the ConfigMap the kustomization generates, at the path the command reads.
    const volumeAt = mounts(job, container);
    const k = kustomization(k8s);
    const generator = (k['configMapGenerator'] as Obj[])[0]!;
    expect(k['generatorOptions']['disableNameSuffixHash']).toBe(true);
    expect(volumeAt.get('/scenario')?.['configMap']?.['name']).toBe(generator['name']);
    const [key, source] = (generator['files'] as string[])[0]!.split('=');
    expect(text).toContain(`run /scenario/${key}`);
    const scenario = parseScenario(readFileSync(join(k8s, source!), 'utf8'), source);
    expect(scenario.target).toBeNull();

    // One t=0 for every slice: --start-at from START_AT, which the ConfigMap run.sh writes provides.
    expect(text).toContain('--start-at "$START_AT"');
    expect(text).toMatch(/if \[ -z "\$\{START_AT:-\}" \]; then[\s\S]*exit 2/);
    const startAt = (container['env'] as Obj[]).find((e) => e['name'] === 'START_AT');
    expect(startAt?.['valueFrom']?.['configMapKeyRef']).toEqual({ name: 'mqtt-sim-start', key: 'START_AT', optional: true });

    // Results on the ReadWriteMany claim.
    const claim = find('PersistentVolumeClaim', 'mqtt-sim-results');
    expect(claim['spec']['accessModes']).toContain('ReadWriteMany');
    expect(volumeAt.get('/results')?.['persistentVolumeClaim']?.['claimName']).toBe(claim['metadata']['name']);
  });

  it('the merge Job reads exactly the N slices from the same claim', () => {
    const n = find('Job', 'mqtt-sim-shards')['spec']['completions'] as number;
    const job = find('Job', 'mqtt-sim-merge');
    expect(job['spec']['completionMode']).toBeUndefined();
    const { container, text } = script(job);
    expect(text).toContain(`merge $(seq -f '/results/shard-%g/run.json' 0 ${n - 1}) --out /results/merged`);
    expect(mounts(job, container).get('/results')?.['persistentVolumeClaim']?.['claimName']).toBe('mqtt-sim-results');
    const reader = find('Pod', 'mqtt-sim-results-reader');
    expect(reader['spec']['volumes'][0]['persistentVolumeClaim']['claimName']).toBe('mqtt-sim-results');
  });

  it('run.sh is valid sh and waits on the Jobs the manifests define', () => {
    const path = join(k8s, 'run.sh');
    execFileSync('sh', ['-n', path]);
    expect(statSync(path).mode & 0o111).not.toBe(0);
    const text = readFileSync(path, 'utf8');
    for (const name of ['mqtt-sim-shards', 'mqtt-sim-merge']) {
      find('Job', name);
      expect(text).toContain(`wait_job ${name}`);
    }
  });
});

describe('deploy/k8s/run.sh with a stand-in kubectl', () => {
  /** Runs run.sh with `kubectl` replaced by a script that logs each call (and what is piped into `apply -f -`) and reports every Job complete. */
  function runScript(env: Record<string, string>): { status: number | null; stderr: string; calls: string[] } {
    const bin = mkdtempSync(join(tmpdir(), 'mqtt-sim-k8s-'));
    try {
      const log = join(bin, 'calls.log');
      writeFileSync(
        join(bin, 'kubectl'),
        [
          '#!/bin/sh',
          'printf \'%s\\n\' "$*" >> "$KUBECTL_LOG"',
          'case "$*" in',
          '  *"get job"*) printf \'Complete \' ;;',
          '  *"create configmap"*) printf \'rendered: %s\\n\' "$*" ;;',
          '  *"apply -f -"*) sed \'s/^/  stdin: /\' >> "$KUBECTL_LOG" ;;',
          'esac',
          '',
        ].join('\n'),
      );
      chmodSync(join(bin, 'kubectl'), 0o755);
      const run = spawnSync('sh', [join(k8s, 'run.sh')], { env: { PATH: `${bin}:${process.env['PATH'] ?? ''}`, KUBECTL_LOG: log, ...env }, encoding: 'utf8', timeout: 20_000 });
      return { status: run.status, stderr: run.stderr, calls: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [] };
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }

  it('stores one start START_LEAD seconds ahead in the ConfigMap the slices read, before it creates the Job', () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const { status, stderr, calls } = runScript({ START_LEAD: '300' });
    const after = Date.now();
    expect(status, stderr).toBe(0);
    const create = calls.findIndex((c) => c.startsWith('create configmap mqtt-sim-start '));
    expect(create, calls.join('\n')).toBeGreaterThanOrEqual(0);
    const startAt = Number(/--from-literal=START_AT=(\d+) /.exec(calls[create]!)?.[1]);
    expect(startAt).toBeGreaterThanOrEqual(before + 300_000);
    expect(startAt).toBeLessThanOrEqual(after + 300_000);
    // Created or replaced: rendered client-side, then applied. The two sides of the pipe run at once, so
    // either may log its call first; what apply reads (logged after both) is what create rendered.
    expect(calls[create]).toContain('--dry-run=client -o yaml');
    const apply = calls.indexOf('apply -f -');
    const piped = calls.indexOf(`  stdin: rendered: ${calls[create]}`);
    expect(apply, calls.join('\n')).toBeGreaterThanOrEqual(0);
    expect(piped, calls.join('\n')).toBe(Math.max(create, apply) + 1);
    expect(Math.abs(create - apply)).toBe(1);
    // After the old Jobs are gone, before the new one exists (its pods read it when they start).
    expect(calls.findIndex((c) => c.startsWith('delete job mqtt-sim-shards'))).toBeLessThan(create);
    expect(calls.findIndex((c) => c.startsWith('apply -k '))).toBeGreaterThan(create);
  });

  it('leads 120 s by default and refuses a START_LEAD that is not whole seconds, before touching the cluster', () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const { calls } = runScript({});
    expect(Number(/START_AT=(\d+)/.exec(calls.find((c) => c.startsWith('create configmap'))!)?.[1])).toBeGreaterThanOrEqual(before + 120_000);
    const bad = runScript({ START_LEAD: '2m' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("START_LEAD must be a whole number of seconds (the time from now to the slices' shared start), got '2m'");
    expect(bad.calls).toEqual([]);
  });
});

describe('deploy/k8s/Dockerfile', () => {
  const dockerfile = readFileSync(join(k8s, 'Dockerfile'), 'utf8');
  const instructions = dockerfile.split('\n').filter((l) => /^[A-Z]+\s/.test(l));

  it('starts from node:20-slim and builds with npm ci', () => {
    expect(instructions[0]).toMatch(/^FROM node:20-slim\b/);
    expect(dockerfile).toMatch(/^RUN npm ci\b/m);
  });

  it('copies sources that exist in the repository', () => {
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const s of sources) expect(existsSync(join(root, s)), `${line}: ${s}`).toBe(true);
    }
  });

  it('has an entry point that the build produces, and the Jobs run the same file', () => {
    const entry = instructions.find((l) => l.startsWith('ENTRYPOINT '));
    expect(entry).toBeDefined();
    const argv = JSON.parse(entry!.slice('ENTRYPOINT '.length)) as string[];
    expect(argv[0]).toBe('node');
    const file = argv[1]!;
    // WORKDIR /app of the final stage, which copies the build's dist/ to ./dist.
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(finalStage).toContain('WORKDIR /app');
    expect(finalStage).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(file).toMatch(/^\/app\/dist\/.+\.js$/);
    // dist/X.js is compiled from X.ts (tsconfig.build.json: rootDir ., outDir dist) when X's folder is built.
    const source = file.replace(/^\/app\/dist\//, '').replace(/\.js$/, '.ts');
    expect(existsSync(join(root, source)), source).toBe(true);
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(build.include).toContain(source.split('/')[0]);
    expect(dockerfile).toContain(`COPY ${source.split('/')[0]} ./${source.split('/')[0]}`);
    for (const name of ['mqtt-sim-shards', 'mqtt-sim-merge']) expect(script(find('Job', name)).text).toContain(`node ${file} `);
  });
});
