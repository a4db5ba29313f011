/**
 * docs/broker-options.md as a pure function of the configuration table. The file is pinned to this
 * output by test/unit/broker/config-docs.test.ts; `npx vitest run test/unit/broker/config-docs.test.ts -u`
 * rewrites it after the table changes.
 */
import { configDefaults, configKeys, configTable, describeExpected, flagName } from './config.js';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderBrokerOptionsMarkdown(): string {
  const rows = configKeys.map((key) => {
    const spec = configTable[key];
    return `| \`${key}\` | \`--${flagName(key)}\` | ${cell(describeExpected(spec))} | \`${String(configDefaults[key])}\` | ${cell(spec.doc)} |`;
  });
  const example = configKeys.map((key) => {
    const value = configDefaults[key];
    return `${key}: ${typeof value === 'string' && !/^[\w.:-]+$/.test(value) ? JSON.stringify(value) : String(value)}`;
  });
  return [
    '# Broker options',
    '',
    '<!-- Generated from configTable in broker/config.ts; do not edit by hand. Regenerate with',
    '     npx vitest run test/unit/broker/config-docs.test.ts -u -->',
    '',
    '`mqtt-sim broker` takes its options from a YAML file (`--config broker.yaml`) and from flags;',
    'a flag overrides the same option in the file. YAML keys are camelCase, exactly the names below',
    '(the `BrokerOptions` field names plus `host` and `port`); each flag is the kebab-case form of the',
    'key. Durations are plain numbers of seconds (`connectTimeout: 10`, not `10s`). An unknown key, a',
    'wrong type or a value out of range stops the broker with exit code 2 and a list of every problem,',
    'e.g. `broker.yaml:3: maxPacketSize: expected an integer from 2 to 268435460, got "big"`.',
    '',
    '`--host` defaults to 127.0.0.1 so a broker started for a test is not reachable from the network;',
    'pass `--host 0.0.0.0` to listen on every interface. `--port 0` picks a free port; the broker prints',
    '`mqtt-sim broker listening on HOST:PORT` with the port it bound.',
    '',
    '| YAML key | Flag | Accepts | Default | Meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    '## Example broker.yaml (every option at its default)',
    '',
    '```yaml',
    ...example,
    '```',
    '',
  ].join('\n');
}
