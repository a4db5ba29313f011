/**
 * docs/broker-options.md as a pure function of the configuration table. The file is pinned to this
 * output by test/unit/broker/config-docs.test.ts; `npx vitest run test/unit/broker/config-docs.test.ts -u`
 * rewrites it after the table changes.
 */
import {
  configDefaults, configKeys, configTable, describeDefault, describeExpected, flagName, listenerFieldTable,
  listenerShortcutKeys, listenerShortcutTable,
} from './config.js';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderBrokerOptionsMarkdown(): string {
  const rows = configKeys.map((key) => {
    const spec = configTable[key];
    const shownDefault = configDefaults[key] === undefined ? cell(describeDefault(key)) : `\`${String(configDefaults[key])}\``;
    return `| \`${key}\` | \`--${flagName(key)}\` | ${cell(describeExpected(spec))} | ${shownDefault} | ${cell(spec.doc)} |`;
  });
  const example = configKeys.map((key) => {
    const value = configDefaults[key];
    // An option without a default stays unset: shown commented out, so the example still parses to the defaults.
    if (value === undefined) return `# ${key}: (unset by default: ${describeDefault(key)})`;
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
    ...renderListenersSection(),
  ].join('\n');
}

/**
 * The compact option table README.md carries between its `broker-options` markers: every option with
 * its flag and default; docs/broker-options.md has the full table with accepted values and meanings.
 */
export function renderReadmeOptionsTable(): string {
  const rows = configKeys.map((key) => {
    const shownDefault = configDefaults[key] === undefined ? cell(describeDefault(key)) : `\`${String(configDefaults[key])}\``;
    return `| \`${key}\` | \`--${flagName(key)}\` | ${shownDefault} | ${cell(configTable[key].doc)} |`;
  });
  return ['| YAML key | Flag | Default | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The listeners section: the listener flags, the fields of a `listeners` entry and an example. */
function renderListenersSection(): string[] {
  const shortcutRows = listenerShortcutKeys.map((key) => {
    const spec = listenerShortcutTable[key];
    return `| \`${key}\` | \`--${flagName(key)}\` | ${cell(describeExpected(spec))} | ${cell(spec.doc)} |`;
  });
  const fieldRows = Object.entries(listenerFieldTable).map(([field, spec]) => `| \`${field}\` | ${cell(describeExpected(spec))} | ${cell(spec.doc)} |`);
  return [
    '## Listeners',
    '',
    'The plain MQTT listener on `host` and `port` always runs. More listeners come from the flags below',
    '(one TLS, one WebSocket and one secure WebSocket listener, on `host`) and from a `listeners` list in',
    'broker.yaml (any number, any mix); both may be used together. The broker prints one line per',
    'listener once all of them accept connections: `mqtt-sim broker listening on HOST:PORT` for plain TCP,',
    'then `... on tls://HOST:PORT`, `... on ws://HOST:PORT/mqtt` or `... on wss://HOST:PORT/mqtt`.',
    '',
    '| YAML key | Flag | Accepts | Meaning |',
    '| --- | --- | --- | --- |',
    ...shortcutRows,
    '',
    'Certificate files are PEM and are read at startup: an unreadable file, or a certificate and key that',
    'do not belong together, stops the broker with exit code 2 and a message naming the key and the file.',
    'With a client certificate required (mutual TLS), a client must present a certificate signed by the CA',
    'file; its subject CN reaches the `authenticate` hook as `certificateCommonName`, and with',
    '`useCommonNameAsUsername: true` it replaces the user name of CONNECT. A failed handshake closes only',
    'that connection.',
    '',
    'WebSocket listeners serve MQTT in binary frames at their path (`/mqtt` unless set) with the',
    'subprotocol `mqtt` (`mqttv3.1` is accepted for MQTT 3.1 clients); an upgrade to another path gets',
    'HTTP 404 and one without an MQTT subprotocol HTTP 400.',
    '',
    '### `listeners` entries',
    '',
    '| Field | Accepts | Meaning |',
    '| --- | --- | --- |',
    ...fieldRows,
    '',
    'A problem in an entry names it by position, e.g.',
    '`broker.yaml:9: listeners[1].port: expected an integer from 0 to 65535, got 70000`.',
    '',
    '```yaml',
    'listeners:',
    '  - { type: tls, port: 8883, cert: certs/server.pem, key: certs/server-key.pem }',
    '  - type: wss',
    '    host: 0.0.0.0',
    '    port: 8884',
    '    cert: certs/server.pem',
    '    key: certs/server-key.pem',
    '    ca: certs/ca.pem',
    '    requireClientCert: true',
    '  - { type: ws, port: 8080, path: /mqtt }',
    'useCommonNameAsUsername: true',
    '```',
    '',
  ];
}
