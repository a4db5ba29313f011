import net from 'node:net';
import yargs from 'yargs';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../../broker/broker.js';
import { configDefaults, configKeys, configTable, describeDefault, flagName, type ConfigValues } from '../../../broker/config.js';
import { runCli } from '../../../cli/app.js';
import {
  brokerCommandBuilder, configFromArgs, formatAddress, listenErrorMessage, serveBroker, type BrokerCommandArgs,
} from '../../../cli/commands/broker.js';
import { UserError } from '../../../cli/exit-codes.js';
import { withTimeout } from '../../helpers/broker.js';

/** Parses `mqtt-sim broker` arguments exactly as the command declares them, without running it. */
function parse(argv: string[]): BrokerCommandArgs {
  return brokerCommandBuilder(
    yargs().strict().exitProcess(false).fail((message, error) => {
      throw error ?? new Error(message);
    }),
  ).parseSync(argv);
}

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error('expected a UserError, but the arguments were accepted');
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const memoryStorage = { persistence: 'memory', dataDir: 'unused', durability: 'process' } as const;

/** A valid value for each row that differs from its default, and how it is spelled on the command line. */
function sampleValue(key: keyof ConfigValues): { value: unknown; argv: string[] } {
  const spec = configTable[key];
  switch (spec.type) {
    case 'integer': return { value: spec.min + 1, argv: [`--${flagName(key)}`, String(spec.min + 1)] };
    case 'seconds': return { value: 1.5, argv: [`--${flagName(key)}`, '1.5'] };
    case 'boolean': return { value: true, argv: [`--${flagName(key)}`] };
    case 'enum': return { value: spec.values.at(-1), argv: [`--${flagName(key)}`, spec.values.at(-1)!] };
    case 'host': return { value: '0.0.0.0', argv: [`--${flagName(key)}`, '0.0.0.0'] };
    case 'path': return { value: 'some/dir', argv: [`--${flagName(key)}`, 'some/dir'] };
  }
}

describe('mqtt-sim broker: flag parsing', () => {
  it('no flags: 127.0.0.1:1883 and no broker options (createBroker applies its defaults)', () => {
    expect(configFromArgs(parse([]))).toEqual({
      listen: { host: '127.0.0.1', port: 1883 },
      storage: { persistence: 'sqlite', dataDir: 'mqtt-sim-data', durability: 'process' },
      options: {},
    });
  });

  it.each(configKeys)('--%s reaches its option', (key) => {
    const { value, argv } = sampleValue(key);
    expect(value).not.toEqual(configDefaults[key]);
    const config = configFromArgs(parse(argv));
    if (key === 'host' || key === 'port') expect(config.listen[key]).toEqual(value);
    else if (key === 'persistence' || key === 'dataDir' || key === 'durability') expect(config.storage[key]).toEqual(value);
    else expect(config.options).toEqual({ [key]: value });
  });

  it('every flag at once', () => {
    const argv = configKeys.flatMap((key) => sampleValue(key).argv);
    const config = configFromArgs(parse(argv));
    const outside = ['host', 'port', 'persistence', 'dataDir', 'durability'];
    expect(Object.keys(config.options).sort()).toEqual(configKeys.filter((k) => !outside.includes(k)).sort());
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 1 });
    expect(config.storage).toEqual({ persistence: 'memory', dataDir: 'some/dir', durability: 'power' });
  });

  it('--port 0 asks for a free port', () => {
    expect(configFromArgs(parse(['--port', '0'])).listen.port).toBe(0);
  });

  it('booleans take --no-<flag>', () => {
    expect(configFromArgs(parse(['--no-queue-qos0'])).options).toEqual({ queueQos0: false });
  });

  it('--config is passed through; a missing file is a usage error naming it', () => {
    expect(parse(['--config', 'conf/broker.yaml']).config).toBe('conf/broker.yaml');
    const err = userError(() => configFromArgs(parse(['--config', '/nonexistent/broker.yaml'])));
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(
      'invalid broker configuration:\n  /nonexistent/broker.yaml: cannot read the config file: it does not exist (check the --config path)',
    );
  });

  it('an invalid value is a usage error (exit 2) naming the flag', () => {
    const err = userError(() => configFromArgs(parse(['--max-packet-size', 'big', '--sys-interval', '5s'])));
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(
      'invalid broker configuration:\n' +
      '  --max-packet-size: expected an integer from 2 to 268435460, got "big"\n' +
      '  --sys-interval: expected a number of seconds from 0 to 2147483, got "5s"',
    );
  });

  it('an unknown flag is refused', () => {
    expect(() => parse(['--max-paket-size', '5'])).toThrow(/Unknown argument/);
  });

  it('a flag without its value is a usage error naming the flag', () => {
    const err = userError(() => configFromArgs(parse(['--max-packet-size', '--host', '--queue-drop-policy'])));
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(
      'invalid broker configuration:\n' +
      '  --host: expected a host name or IP address, got ""\n' +
      '  --max-packet-size: expected an integer from 2 to 268435460, got no value\n' +
      '  --queue-drop-policy: expected "drop-new" or "drop-oldest", got ""',
    );
    expect(userError(() => configFromArgs(parse(['--config']))).message).toBe(
      '--config: expected the path of one YAML file, got no value',
    );
    expect(userError(() => configFromArgs(parse(['--config', 'a.yaml', '--config', 'b.yaml']))).message).toBe(
      '--config: expected the path of one YAML file, got it more than once',
    );
  });
});

describe('mqtt-sim broker through runCli', () => {
  it('--help lists every flag with its default, exit 0', async () => {
    const r = await run(['broker', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('--config');
    for (const key of configKeys) {
      expect(r.stdout, key).toContain(`--${flagName(key)}`);
      expect(r.stdout, key).toContain(`[default: ${describeDefault(key)}]`);
    }
  });

  it('an invalid flag value exits 2 with the message and no stack trace', async () => {
    const r = await run(['broker', '--port', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port: expected an integer from 0 to 65535, got "x"');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it.each([['--port'], ['--config']])('%s without a value exits 2 with no stack trace', async (flag) => {
    const r = await run(['broker', flag]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${flag}: expected`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unknown flag exits 2', async () => {
    const r = await run(['broker', '--max-paket-size', '5']);
    expect(r.code).toBe(2);
    // yargs names both spellings it parsed: "Unknown arguments: max-paket-size, maxPaketSize".
    expect(r.stderr).toMatch(/Unknown arguments?: max-paket-size/);
  });
});

describe('listen failures', () => {
  const listen = { host: '127.0.0.1', port: 1883 };
  const code = (c: string): NodeJS.ErrnoException => Object.assign(new Error(c), { code: c });

  it.each<[string, string]>([
    ['EADDRINUSE', 'cannot listen on 127.0.0.1:1883: port 1883 is already in use; stop the process using it or choose another port with --port (--port 0 picks a free one)'],
    ['EACCES', 'cannot listen on 127.0.0.1:1883: permission denied; ports below 1024 need elevated privileges, so choose --port 1024 or higher (or 0 for a free one)'],
    ['EADDRNOTAVAIL', 'cannot listen on 127.0.0.1:1883: 127.0.0.1 is not an address of this machine; choose one of its addresses with --host (0.0.0.0 for all)'],
    ['ENOTFOUND', 'cannot listen on 127.0.0.1:1883: the host name 127.0.0.1 does not resolve; check --host'],
  ])('%s', (errno, message) => {
    expect(listenErrorMessage(code(errno), listen)).toBe(message);
  });

  it('other errors are not user mistakes (left for the internal-error path)', () => {
    expect(listenErrorMessage(code('EMFILE'), listen)).toBeUndefined();
    expect(listenErrorMessage(new Error('boom'), listen)).toBeUndefined();
  });

  it('IPv6 addresses are bracketed', () => {
    expect(formatAddress('::1', 1883)).toBe('[::1]:1883');
    expect(formatAddress('127.0.0.1', 1883)).toBe('127.0.0.1:1883');
  });
});

describe('serveBroker (in-process, stopped by an AbortSignal)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('prints the bound port, serves until aborted, then closes the broker', async () => {
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    let stdout = '';
    let printed!: () => void;
    const listening = new Promise<void>((resolve) => (printed = resolve));
    let broker: Broker | undefined;
    const served = serveBroker(
      { listen: { host: '127.0.0.1', port: 0 }, storage: memoryStorage, options: { sysInterval: 0 } },
      {
        stdout: (t) => { stdout += t; printed(); },
        stderr: () => {},
        signal: stop.signal,
        createBroker: (options) => (broker = createBroker(options)),
      },
    );
    await withTimeout(listening, 5000, 'serveBroker never printed its listening line');
    const match = /^mqtt-sim broker listening on 127\.0\.0\.1:(\d+)\n$/.exec(stdout);
    expect(match).not.toBeNull();
    const port = Number(match![1]);
    expect(port).toBeGreaterThan(0);
    expect(broker!.address()?.port).toBe(port);

    stop.abort();
    const address = await withTimeout(served, 5000, 'serveBroker did not resolve after abort');
    expect(address.port).toBe(port);
    // Closed: a new connection is refused.
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => { socket.destroy(); reject(new Error('the broker still accepts connections')); });
        socket.once('error', () => resolve());
      }),
      5000,
      'connecting to the closed broker neither failed nor succeeded',
    );
  });

  it('a port in use is a usage error (exit 2) and the broker it created is closed', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;
    let closed = false;
    const stop = new AbortController();
    const served = serveBroker(
      { listen: { host: '127.0.0.1', port }, storage: memoryStorage, options: { sysInterval: 0 } },
      {
        stdout: () => {},
        stderr: () => {},
        signal: stop.signal,
        createBroker: (options) => {
          const b = createBroker(options);
          const close = b.close.bind(b);
          return { ...b, close: async () => { closed = true; await close(); } };
        },
      },
    );
    const err = await served.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toContain(`port ${port} is already in use`);
    expect(closed).toBe(true);
  });
});
