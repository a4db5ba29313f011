/**
 * Listener configuration: the `listeners` list of broker.yaml and the --tls-*, --ws-port and --wss-port
 * flags, into BrokerConfig.listeners with the PEM files read. Every error message is pinned.
 * Files come from an injected readFile (a map), so no test touches the disk.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { renderBrokerOptionsMarkdown } from '../../../broker/config-docs.js';
import {
  ConfigError, listenerFieldTable, listenerShortcutKeys, listenerShortcutTable, loadBrokerConfig, parseConfigYaml,
  type BrokerConfig, type ConfigSources,
} from '../../../broker/config.js';
import { createTestPki, type TestPki } from '../../helpers/certificates.js';

let pki: TestPki;
let files: Map<string, string>;

beforeAll(async () => {
  pki = await createTestPki();
  files = new Map([
    ['certs/server.pem', pki.server.cert],
    ['certs/server-key.pem', pki.server.key],
    ['certs/ca.pem', pki.ca.cert],
    ['certs/client-key.pem', pki.client.key],
    ['certs/not-a-cert.pem', 'hello\n'],
  ]);
});

/** readFile over `files` plus broker.yaml; a missing path fails like fs does (ENOENT). */
function readFrom(yaml?: string): (path: string) => string {
  return (path) => {
    if (path === 'broker.yaml' && yaml !== undefined) return yaml;
    const text = files.get(path);
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
}

function load(options: { yaml?: string; flags?: Record<string, unknown> }): BrokerConfig {
  const sources: ConfigSources = { readFile: readFrom(options.yaml), ...(options.flags !== undefined ? { flags: options.flags } : {}) };
  return loadBrokerConfig(options.yaml !== undefined ? { ...sources, file: 'broker.yaml' } : sources);
}

/** The problems of a configuration that must be refused, one formatted line each. */
function problems(options: { yaml?: string; flags?: Record<string, unknown> }): string[] {
  try {
    load(options);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n').slice(1).map((l) => l.trim());
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

const tlsFlags = { tlsCert: 'certs/server.pem', tlsKey: 'certs/server-key.pem' };

describe('listener flags', () => {
  it('without listener keys the configuration has no extra listeners (only host:port)', () => {
    const config = load({ flags: { port: 0 } });
    expect(config.listeners).toBeUndefined();
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('--tls-port with --tls-cert and --tls-key adds a TLS listener on host, with the PEM files read', () => {
    const config = load({ flags: { tlsPort: 8883, ...tlsFlags } });
    expect(config.listeners).toEqual([{ type: 'tls', host: '127.0.0.1', port: 8883, cert: pki.server.cert, key: pki.server.key }]);
  });

  it('--tls-ca and --tls-require-client-cert make it mutual TLS', () => {
    const config = load({ flags: { tlsPort: '8883', ...tlsFlags, tlsCa: 'certs/ca.pem', tlsRequireClientCert: true } });
    expect(config.listeners).toEqual([{
      type: 'tls', host: '127.0.0.1', port: 8883, cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, requireClientCert: true,
    }]);
  });

  it('--ws-port adds a WebSocket listener; --wss-port reuses the TLS files; all follow --host', () => {
    const config = load({ flags: { host: '0.0.0.0', wsPort: 8080, wssPort: 8081, ...tlsFlags, tlsCa: 'certs/ca.pem' } });
    expect(config.listen.host).toBe('0.0.0.0');
    expect(config.listeners).toEqual([
      { type: 'ws', host: '0.0.0.0', port: 8080 },
      { type: 'wss', host: '0.0.0.0', port: 8081, cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert },
    ]);
  });

  it('the flags are also top-level keys of broker.yaml, and flags override them', () => {
    const yaml = 'tlsPort: 8883\ntlsCert: certs/server.pem\ntlsKey: certs/server-key.pem\nwsPort: 8080\n';
    const config = load({ yaml, flags: { wsPort: 9090 } });
    expect(config.listeners?.map((l) => [l.type, l.port])).toEqual([['tls', 8883], ['ws', 9090]]);
  });

  it('a port in the file may take its certificate from the flags', () => {
    const config = load({ yaml: 'wssPort: 8884\n', flags: tlsFlags });
    expect(config.listeners).toEqual([{ type: 'wss', host: '127.0.0.1', port: 8884, cert: pki.server.cert, key: pki.server.key }]);
  });

  it('every flag has a doc sentence and the docs list it', () => {
    const doc = renderBrokerOptionsMarkdown();
    for (const key of listenerShortcutKeys) {
      expect(listenerShortcutTable[key].doc, key).toMatch(/^[A-Z].*\.$/);
      expect(doc, key).toContain(`| \`${key}\` | \`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}\` |`);
    }
    for (const field of Object.keys(listenerFieldTable)) expect(doc, field).toContain(`| \`${field}\` |`);
  });
});

describe('listener flags: each error message (pinned)', () => {
  it.each<[string, Record<string, unknown>, string[]]>([
    ['a port that is not one', { tlsPort: 'x', ...tlsFlags }, ['--tls-port: expected an integer from 0 to 65535, got "x"']],
    ['a port out of range', { wsPort: 70000 }, ['--ws-port: expected an integer from 0 to 65535, got 70000']],
    ['--tls-port without a certificate', { tlsPort: 8883 }, [
      '--tls-port: a TLS listener needs a certificate and key: set --tls-cert and --tls-key (PEM files)',
    ]],
    ['--wss-port without a key', { wssPort: 8884, tlsCert: 'certs/server.pem' }, [
      '--wss-port: a TLS listener needs a certificate and key: set --tls-cert and --tls-key (PEM files)',
    ]],
    ['mutual TLS without a CA', { tlsPort: 8883, ...tlsFlags, tlsRequireClientCert: true }, [
      '--tls-require-client-cert: needs --tls-ca, the PEM file of the CA that signs client certificates',
    ]],
    ['TLS files without a TLS listener', { tlsCert: 'certs/server.pem', tlsRequireClientCert: true }, [
      '--tls-cert: applies to the listeners of --tls-port and --wss-port, and neither is set',
    ]],
    ['a certificate file that does not exist', { tlsPort: 8883, tlsCert: 'certs/missing.pem', tlsKey: 'certs/server-key.pem' }, [
      '--tls-cert: cannot read certs/missing.pem: it does not exist',
    ]],
    ['a key that does not belong to the certificate', { tlsPort: 8883, tlsCert: 'certs/server.pem', tlsKey: 'certs/client-key.pem' }, [
      expect.stringMatching(/^--tls-cert: cannot use certs\/server\.pem with key certs\/client-key\.pem: .*key values mismatch/) as unknown as string,
    ]],
    ['a file that is not PEM', { tlsPort: 8883, tlsCert: 'certs/not-a-cert.pem', tlsKey: 'certs/server-key.pem' }, [
      expect.stringMatching(/^--tls-cert: cannot use certs\/not-a-cert\.pem with key certs\/server-key\.pem: /) as unknown as string,
    ]],
  ])('%s', (_name, flags, expected) => {
    expect(problems({ flags })).toEqual(expected);
  });

  it('a problem about a file key names it as the file spells it', () => {
    expect(problems({ yaml: 'tlsPort: 8883\n', flags: {} })).toEqual([
      'broker.yaml:1: tlsPort: a TLS listener needs a certificate and key: set tlsCert and tlsKey (PEM files)',
    ]);
    expect(problems({ yaml: 'tlsPort: 8883\ntlsCert: certs/server.pem\ntlsKey: certs/nope.pem\n' })).toEqual([
      'broker.yaml:3: tlsKey: cannot read certs/nope.pem: it does not exist',
    ]);
  });

  it('an unreadable file is reported with the reason the system gave', () => {
    const read = (path: string): string => {
      if (path === 'certs/server.pem') throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      if (path === 'certs') throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      return files.get(path) ?? '';
    };
    const messages = (flags: Record<string, unknown>): string[] => {
      try {
        loadBrokerConfig({ flags, readFile: read });
      } catch (err) {
        return (err as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
      }
      return [];
    };
    expect(messages({ tlsPort: 1, tlsCert: 'certs/server.pem', tlsKey: 'certs/server-key.pem' })).toEqual([
      '--tls-cert: cannot read certs/server.pem: permission denied (check its permissions)',
    ]);
    expect(messages({ wssPort: 1, tlsCert: 'certs/server.pem', tlsKey: 'certs' })).toEqual([
      '--tls-cert: cannot read certs/server.pem: permission denied (check its permissions)',
      '--tls-key: cannot read certs: it is a directory (give the path of a PEM file)',
    ]);
  });

  it('files are read only when everything else is valid', () => {
    expect(problems({ flags: { tlsPort: 8883, tlsCert: 'certs/missing.pem', tlsKey: 'certs/missing.pem', maxPacketSize: 'big' } })).toEqual([
      '--max-packet-size: expected an integer from 2 to 268435460, got "big"',
    ]);
  });
});

describe('broker.yaml listeners list', () => {
  const yaml = [
    'host: 0.0.0.0',
    'listeners:',
    '  - { type: tcp, port: 1884, host: 127.0.0.1 }',
    '  - { type: tls, port: 8883, cert: certs/server.pem, key: certs/server-key.pem }',
    '  - type: wss',
    '    port: 8884',
    '    cert: certs/server.pem',
    '    key: certs/server-key.pem',
    '    ca: certs/ca.pem',
    '    requireClientCert: true',
    '  - { type: ws, port: 8080, path: /ws/mqtt }',
    '',
  ].join('\n');

  it('reads every entry, in order, each on the top-level host unless it names its own', () => {
    const config = load({ yaml });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 1883 });
    expect(config.listeners).toEqual([
      { type: 'tcp', host: '127.0.0.1', port: 1884 },
      { type: 'tls', host: '0.0.0.0', port: 8883, cert: pki.server.cert, key: pki.server.key },
      { type: 'wss', host: '0.0.0.0', port: 8884, cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, requireClientCert: true },
      { type: 'ws', host: '0.0.0.0', port: 8080, path: '/ws/mqtt' },
    ]);
  });

  it('list entries come before the listeners of the flags', () => {
    const config = load({ yaml: 'listeners:\n  - { type: ws, port: 8080 }\n', flags: { wsPort: 9090 } });
    expect(config.listeners?.map((l) => l.port)).toEqual([8080, 9090]);
  });

  it('parseConfigYaml keeps the list (files unread) apart from the broker options', () => {
    expect(parseConfigYaml('listeners:\n  - { type: ws, port: 8080 }\nwsPort: 1\n', 'broker.yaml')).toEqual({
      listeners: [{ type: 'ws', port: 8080 }], wsPort: 1,
    });
    expect(load({ yaml: 'listeners:\n  - { type: ws, port: 8080 }\n' }).options).toEqual({});
  });

  it('an empty list adds nothing', () => {
    expect(load({ yaml: 'listeners: []\n' }).listeners).toBeUndefined();
  });

  it('the example in docs/broker-options.md is valid', () => {
    const example = [...renderBrokerOptionsMarkdown().matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((y) => y.startsWith('listeners:'));
    expect(example).toBeDefined();
    expect(load({ yaml: example! }).listeners?.map((l) => `${l.type}:${l.port}`)).toEqual(['tls:8883', 'wss:8884', 'ws:8080']);
  });
});

describe('broker.yaml listeners list: each error message (pinned)', () => {
  it.each<[string, string, string[]]>([
    ['a port out of range', 'listeners:\n  - { type: tcp, port: 1884 }\n  - { type: ws, port: 70000 }\n', [
      'broker.yaml:3: listeners[1].port: expected an integer from 0 to 65535, got 70000',
    ]],
    ['an unknown type', 'listeners:\n  - type: mqtts\n    port: 8883\n', [
      'broker.yaml:2: listeners[0].type: expected one of "tcp", "tls", "ws", "wss", got "mqtts"',
    ]],
    ['a missing port and type', 'listeners:\n  - { host: 0.0.0.0 }\n', [
      'broker.yaml:2: listeners[0]: missing type (one of "tcp", "tls", "ws", "wss")',
      'broker.yaml:2: listeners[0]: missing port (an integer from 0 to 65535)',
    ]],
    ['a mistyped field', 'listeners:\n  - type: ws\n    prot: 8080\n    port: 8080\n', [
      'broker.yaml:3: listeners[0].prot: unknown listener field; did you mean port?',
    ]],
    ['a field no listener has', 'listeners:\n  - { type: ws, port: 8080, backlog: 5 }\n', [
      'broker.yaml:2: listeners[0].backlog: unknown listener field; a listener takes type, host, port, path, cert, key, ca, requireClientCert',
    ]],
    ['TLS files on a plain listener', 'listeners:\n  - { type: ws, port: 8080, cert: certs/server.pem }\n', [
      'broker.yaml:2: listeners[0].cert: only tls and wss listeners take cert; this one is ws',
    ]],
    ['a path on a non-WebSocket listener', 'listeners:\n  - { type: tcp, port: 1884, path: /mqtt }\n', [
      'broker.yaml:2: listeners[0].path: only ws and wss listeners take path; this one is tcp',
    ]],
    ['a path without its slash', 'listeners:\n  - { type: ws, port: 8080, path: mqtt }\n', [
      'broker.yaml:2: listeners[0].path: expected a URL path starting with /, got "mqtt"',
    ]],
    ['a TLS listener without a key', 'listeners:\n  - type: tls\n    port: 8883\n    cert: certs/server.pem\n', [
      'broker.yaml:2: listeners[0]: a tls listener needs cert and key (PEM files)',
    ]],
    ['mutual TLS without a CA', 'listeners:\n  - { type: wss, port: 1, cert: a.pem, key: b.pem, requireClientCert: true }\n', [
      'broker.yaml:2: listeners[0].requireClientCert: needs ca, the PEM file of the CA that signs client certificates',
    ]],
    ['an entry that is not a mapping', 'listeners:\n  - tls\n', [
      'broker.yaml:2: listeners[0]: expected a mapping with type and port (e.g. "{ type: ws, port: 8080 }"), got "tls"',
    ]],
    ['not a list', 'listeners: { type: ws, port: 8080 }\n', [
      'broker.yaml:1: listeners: expected a list of listeners (e.g. "- { type: ws, port: 8080 }"), got {"type":"ws","port":8080}',
    ]],
    ['an empty value', 'listeners:\n', [
      'broker.yaml:1: listeners: expected a list of listeners (e.g. "- { type: ws, port: 8080 }"), got null (an empty value)',
    ]],
    ['a certificate file that does not exist', 'listeners:\n  - type: tls\n    port: 8883\n    cert: certs/server.pem\n    key: keys/missing.pem\n', [
      'broker.yaml:5: listeners[0].key: cannot read keys/missing.pem: it does not exist',
    ]],
  ])('%s', (_name, yaml, expected) => {
    expect(problems({ yaml })).toEqual(expected);
  });

  it('problems in several entries are all reported, with other problems of the file', () => {
    expect(problems({ yaml: 'maxPacketSize: big\nlisteners:\n  - { type: ws, port: -1 }\n  - { type: tls, port: 1 }\n' })).toEqual([
      'broker.yaml:1: maxPacketSize: expected an integer from 2 to 268435460, got "big"',
      'broker.yaml:3: listeners[0].port: expected an integer from 0 to 65535, got -1',
      'broker.yaml:4: listeners[1]: a tls listener needs cert and key (PEM files)',
    ]);
  });
});
