import { describe, expect, it } from 'vitest';
import {
  ConfigError, configDefaults, configKeys, configTable, defaultStorage, describeDefault, flagName, loadBrokerConfig, parseConfigYaml,
  validateConfigValues, type ConfigProblem,
} from '../../../broker/config.js';
import { defaultBrokerOptions } from '../../../broker/options.js';

/** The ConfigError thrown by `fn`, or a failure saying none was thrown. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

function fileMessages(yaml: string, file = 'broker.yaml'): string[] {
  return configError(() => parseConfigYaml(yaml, file)).message.split('\n').slice(1).map((l) => l.trim());
}

function flagMessages(flags: Record<string, unknown>): string[] {
  return configError(() => loadBrokerConfig({ flags })).message.split('\n').slice(1).map((l) => l.trim());
}

describe('configuration table', () => {
  it('has a row for every BrokerOptions default except clock, plus the listener and storage rows', () => {
    const outside = ['host', 'port', 'persistence', 'dataDir', 'durability'];
    const optionKeys = Object.keys(defaultBrokerOptions).filter((k) => k !== 'clock').sort();
    expect(configKeys.filter((k) => !outside.includes(k)).sort()).toEqual(optionKeys);
    expect(configKeys.slice(0, 5)).toEqual(outside);
  });

  it('storage defaults to sqlite in ./mqtt-sim-data, durable against a killed process', () => {
    expect(defaultStorage).toEqual({ persistence: 'sqlite', dataDir: 'mqtt-sim-data', durability: 'process' });
    expect(parseConfigYaml('persistence: memory\ndataDir: /var/lib/mqtt-sim\ndurability: power\n', 'broker.yaml')).toEqual({
      persistence: 'memory', dataDir: '/var/lib/mqtt-sim', durability: 'power',
    });
    expect(fileMessages('persistence: disk\n')).toEqual(['broker.yaml:1: persistence: expected "sqlite" or "memory", got "disk"']);
  });

  it('defaults come from defaultBrokerOptions; the listener defaults to 127.0.0.1:1883', () => {
    expect(configDefaults.host).toBe('127.0.0.1');
    expect(configDefaults.port).toBe(1883);
    expect(configDefaults.maxPacketSize).toBe(defaultBrokerOptions.maxPacketSize);
    expect(configDefaults.queueDropPolicy).toBe(defaultBrokerOptions.queueDropPolicy);
  });

  it('every default passes its own row', () => {
    const { problems } = validateConfigValues(configDefaults as unknown as Record<string, unknown>, { file: 'defaults' });
    expect(problems).toEqual([]);
  });

  it('every row has a doc sentence', () => {
    for (const key of configKeys) expect(configTable[key].doc, key).toMatch(/^[A-Z$].*\.$/);
  });

  it('flag names are the kebab-case keys', () => {
    expect(flagName('maxPacketSize')).toBe('max-packet-size');
    expect(flagName('queueQos0')).toBe('queue-qos0');
    expect(flagName('port')).toBe('port');
  });
});

describe('broker.yaml: accepted values', () => {
  it('reads camelCase keys into typed values', () => {
    const values = parseConfigYaml(
      'host: 0.0.0.0\nport: 0\nmaxPacketSize: 2048\nconnectTimeout: 2.5\nqueueDropPolicy: drop-oldest\nqueueQos0: true\n',
      'broker.yaml',
    );
    expect(values).toEqual({
      host: '0.0.0.0', port: 0, maxPacketSize: 2048, connectTimeout: 2.5, queueDropPolicy: 'drop-oldest', queueQos0: true,
    });
  });

  it('an empty file or one with only comments sets nothing', () => {
    expect(parseConfigYaml('', 'broker.yaml')).toEqual({});
    expect(parseConfigYaml('# nothing yet\n', 'broker.yaml')).toEqual({});
  });

  it('accepts the bounds of each range', () => {
    expect(parseConfigYaml('maxPacketSize: 2\nport: 65535\nmaxSessionExpiry: 4294967295\nsysInterval: 0\n', 'b.yaml')).toEqual({
      maxPacketSize: 2, port: 65535, maxSessionExpiry: 4294967295, sysInterval: 0,
    });
    expect(parseConfigYaml('maxPacketSize: 268435460\n', 'b.yaml')).toEqual({ maxPacketSize: 268435460 });
  });
});

describe('broker.yaml: each error message (pinned)', () => {
  it.each<[string, string]>([
    ['maxPacketSize: big', 'broker.yaml:1: maxPacketSize: expected an integer from 2 to 268435460, got "big"'],
    ['maxPacketSize: 1', 'broker.yaml:1: maxPacketSize: expected an integer from 2 to 268435460, got 1'],
    ['maxPacketSize: 268435461', 'broker.yaml:1: maxPacketSize: expected an integer from 2 to 268435460, got 268435461'],
    ['receiveMaximum: 1.5', 'broker.yaml:1: receiveMaximum: expected an integer from 1 to 65535, got 1.5'],
    ['receiveMaximum: 0', 'broker.yaml:1: receiveMaximum: expected an integer from 1 to 65535, got 0'],
    ['maxInflight: 70000', 'broker.yaml:1: maxInflight: expected an integer from 1 to 65535, got 70000'],
    ['topicAliasMaximum: -1', 'broker.yaml:1: topicAliasMaximum: expected an integer from 0 to 65535, got -1'],
    ['maxKeepalive: "60"', 'broker.yaml:1: maxKeepalive: expected an integer from 0 to 65535, got "60"'],
    ['connectTimeout: 10s', 'broker.yaml:1: connectTimeout: expected a number of seconds from 0 to 2147483, got "10s"'],
    ['connectTimeout: 3000000', 'broker.yaml:1: connectTimeout: expected a number of seconds from 0 to 2147483, got 3000000'],
    ['maxQueuedMessages: -5', 'broker.yaml:1: maxQueuedMessages: expected an integer of 0 or more, got -5'],
    ['maxQueuedBytes: 64MB', 'broker.yaml:1: maxQueuedBytes: expected an integer of 0 or more, got "64MB"'],
    ['queueDropPolicy: drop-newest', 'broker.yaml:1: queueDropPolicy: expected "drop-new" or "drop-oldest", got "drop-newest"'],
    ['queueQos0: yes', 'broker.yaml:1: queueQos0: expected true or false, got "yes"'],
    ['writeBufferLimit: 0', 'broker.yaml:1: writeBufferLimit: expected an integer of 1 or more, got 0'],
    ['slowConsumerTimeout: .inf', 'broker.yaml:1: slowConsumerTimeout: expected a number of seconds from 0 to 2147483, got Infinity'],
    ['sysInterval: [5]', 'broker.yaml:1: sysInterval: expected a number of seconds from 0 to 2147483, got [5]'],
    ['maxSessionExpiry: 4294967296', 'broker.yaml:1: maxSessionExpiry: expected an integer from 0 to 4294967295, got 4294967296'],
    ['host: ""', 'broker.yaml:1: host: expected a host name or IP address, got ""'],
    ['host: { a: 1 }', 'broker.yaml:1: host: expected a host name or IP address, got {"a":1}'],
    ['port: 70000', 'broker.yaml:1: port: expected an integer from 0 to 65535, got 70000'],
    ['port:', 'broker.yaml:1: port: expected an integer from 0 to 65535, got null (an empty value)'],
  ])('%s', (yaml, message) => {
    expect(fileMessages(yaml + '\n')).toEqual([message]);
  });

  it('an unknown key close to an option suggests it', () => {
    expect(fileMessages('maxPaketSize: 5\n')).toEqual(['broker.yaml:1: maxPaketSize: unknown option; did you mean maxPacketSize?']);
  });

  it('kebab-case and snake_case keys are told to use camelCase', () => {
    expect(fileMessages('max-packet-size: 5\nmax_inflight: 3\n')).toEqual([
      'broker.yaml:1: max-packet-size: unknown option; keys are camelCase: write maxPacketSize',
      'broker.yaml:2: max_inflight: unknown option; keys are camelCase: write maxInflight',
    ]);
  });

  it('an unknown key with no close match points to the list of options', () => {
    expect(fileMessages('tls: true\n')).toEqual([
      "broker.yaml:1: tls: unknown option; see 'mqtt-sim broker --help' or docs/broker-options.md for the list",
    ]);
  });

  it('lists every problem, each with its line, and only problems', () => {
    const err = configError(() => parseConfigYaml('port: 1883\nmaxPacketSize: big\nsysInterval: 5\nfoo: 1\nqueueQos0: 1\n', 'conf/broker.yaml'));
    expect(err.message).toBe(
      'invalid broker configuration:\n' +
      '  conf/broker.yaml:2: maxPacketSize: expected an integer from 2 to 268435460, got "big"\n' +
      "  conf/broker.yaml:4: foo: unknown option; see 'mqtt-sim broker --help' or docs/broker-options.md for the list\n" +
      '  conf/broker.yaml:5: queueQos0: expected true or false, got 1',
    );
    expect(err.problems.map((p: ConfigProblem) => p.key)).toEqual(['maxPacketSize', 'foo', 'queueQos0']);
  });

  it('a top level that is not a mapping says what is expected', () => {
    expect(fileMessages('- port: 1883\n')).toEqual([
      'broker.yaml: expected a mapping of option names to values (e.g. "port: 1883"), got [{"port":1883}]',
    ]);
    expect(fileMessages('1883\n')).toEqual([
      'broker.yaml: expected a mapping of option names to values (e.g. "port: 1883"), got 1883',
    ]);
  });
});

describe('broker.yaml: YAML syntax errors name the file, line and column', () => {
  it('an unclosed flow sequence', () => {
    expect(fileMessages('port: 1883\nlist: [1, 2\nhost: x\n')).toEqual([
      'broker.yaml:3:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('a duplicated key', () => {
    expect(fileMessages('port: 1883\nport: 1884\n')).toEqual(['broker.yaml:2:1: invalid YAML: Map keys must be unique']);
  });

  it('an unterminated string', () => {
    const [message] = fileMessages('port: 1883\nhost: "127.0.0.1\n');
    expect(message).toMatch(/^broker\.yaml:\d+:\d+: invalid YAML: Missing closing "quote/);
  });
});

describe('flags', () => {
  it('are reported by flag name', () => {
    expect(flagMessages({ maxPacketSize: 'big', queueDropPolicy: 'x' })).toEqual([
      '--max-packet-size: expected an integer from 2 to 268435460, got "big"',
      '--queue-drop-policy: expected "drop-new" or "drop-oldest", got "x"',
    ]);
  });

  it('a flag given twice arrives as a list and is refused', () => {
    expect(flagMessages({ port: [1, 2] })).toEqual(['--port: expected an integer from 0 to 65535, got [1,2]']);
  });

  it('accept decimal strings for numbers (yargs leaves "08" unparsed)', () => {
    expect(loadBrokerConfig({ flags: { port: '08', connectTimeout: '1.5' } })).toEqual({
      listen: { host: '127.0.0.1', port: 8 },
      storage: defaultStorage,
      options: { connectTimeout: 1.5 },
    });
  });

  it('undefined flag values are ignored (flags not given)', () => {
    expect(loadBrokerConfig({ flags: { port: undefined, maxInflight: undefined } })).toEqual({
      listen: { host: '127.0.0.1', port: 1883 },
      storage: defaultStorage,
      options: {},
    });
  });
});

describe('loading: file and flags merged', () => {
  const files: Record<string, string> = {
    'broker.yaml': 'host: 0.0.0.0\nport: 1884\nmaxInflight: 10\nqueueQos0: true\n',
    'bad.yaml': 'maxPacketSize: big\n',
  };
  const readFile = (path: string): string => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };

  it('nothing given: the default listener and no options (createBroker fills in its defaults)', () => {
    expect(loadBrokerConfig()).toEqual({ listen: { host: '127.0.0.1', port: 1883 }, storage: defaultStorage, options: {} });
  });

  it('the file alone', () => {
    expect(loadBrokerConfig({ file: 'broker.yaml', readFile })).toEqual({
      listen: { host: '0.0.0.0', port: 1884 },
      storage: defaultStorage,
      options: { maxInflight: 10, queueQos0: true },
    });
  });

  it('flags override the file, key by key', () => {
    expect(loadBrokerConfig({ file: 'broker.yaml', readFile, flags: { port: 0, queueQos0: false, sysInterval: 0 } })).toEqual({
      listen: { host: '0.0.0.0', port: 0 },
      storage: defaultStorage,
      options: { maxInflight: 10, queueQos0: false, sysInterval: 0 },
    });
  });

  it('problems in the file and in the flags are reported together', () => {
    const err = configError(() => loadBrokerConfig({ file: 'bad.yaml', readFile, flags: { port: -1 } }));
    expect(err.message).toBe(
      'invalid broker configuration:\n' +
      '  bad.yaml:1: maxPacketSize: expected an integer from 2 to 268435460, got "big"\n' +
      '  --port: expected an integer from 0 to 65535, got -1',
    );
  });

  it('a missing file names the path and the flag to fix', () => {
    expect(configError(() => loadBrokerConfig({ file: 'missing.yaml', readFile })).message).toBe(
      'invalid broker configuration:\n  missing.yaml: cannot read the config file: it does not exist (check the --config path)',
    );
  });

  it('reads a real file from disk by default', () => {
    const url = new URL('../../../package.json', import.meta.url);
    // package.json is valid YAML but not broker options: proves the file was read and validated.
    const err = configError(() => loadBrokerConfig({ file: url.pathname }));
    expect(err.problems[0]!.where).toMatch(/package\.json:2$/);
    expect(err.problems[0]!.message).toMatch(/^unknown option/);
  });
});

describe('authentication options', () => {
  it('passwordFile, aclFile and allowAnonymous are read from the file and have no default value', () => {
    expect(parseConfigYaml('passwordFile: /etc/mqtt-sim/users.pw\naclFile: acl.conf\nallowAnonymous: true\n', 'broker.yaml')).toEqual({
      passwordFile: '/etc/mqtt-sim/users.pw', aclFile: 'acl.conf', allowAnonymous: true,
    });
    expect('passwordFile' in configDefaults).toBe(false);
    expect(describeDefault('passwordFile')).toBe('none');
    expect(describeDefault('allowAnonymous')).toBe('true without --password-file, false with it');
    expect(describeDefault('maxInflight')).toBe(String(configDefaults.maxInflight));
  });

  it('their error messages say what is expected', () => {
    expect(fileMessages('passwordFile: ""\naclFile: 3\nallowAnonymous: "no"\n')).toEqual([
      'broker.yaml:1: passwordFile: expected a file path, got ""',
      'broker.yaml:2: aclFile: expected a file path, got 3',
      'broker.yaml:3: allowAnonymous: expected true or false, got "no"',
    ]);
  });
});
