/**
 * Structured logs (broker/log.ts): pino JSON records captured from a destination stream. Each record
 * has a numeric level, a msg and an `event` naming what happened.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker } from '../../../broker/broker.js';
import type { BrokerOptions } from '../../../broker/options.js';
import { closeAllClients, connectClient, startBroker, type TestBroker } from '../../helpers/broker.js';
import { captureLog, LEVEL, type LogCapture } from '../../helpers/log-lines.js';
import { closeAllRawClients, connectRaw, openRawClient, rawConnectPacket } from '../../helpers/raw-client.js';

const brokers: TestBroker[] = [];

afterEach(async () => {
  await closeAllClients();
  closeAllRawClients();
  for (const b of brokers.splice(0)) await b.close();
});

async function loggedBroker(options: Partial<BrokerOptions> = {}): Promise<{ t: TestBroker; log: LogCapture }> {
  const log = captureLog();
  // The logger's own level is the most verbose; logLevel is what the broker asks for.
  const t = await startBroker({ logger: pino({ level: 'debug' }, log.stream), ...options });
  brokers.push(t);
  return { t, log };
}

describe('broker logs', () => {
  it('client connect and disconnect: JSON records with level, msg, client id, address, protocol and reason', async () => {
    const { t, log } = await loggedBroker();
    const listening = await log.waitFor((r) => r.event === 'broker.listening', 'broker.listening');
    expect(listening).toMatchObject({ level: LEVEL.info, msg: 'listening', transport: 'tcp', address: '127.0.0.1', port: t.port });

    const client = await connectClient(t.url, { protocolVersion: 5, clientId: 'log-a' });
    const connected = await log.waitFor((r) => r.event === 'client.connected' && r.clientId === 'log-a', 'client.connected for log-a');
    expect(connected).toMatchObject({ level: LEVEL.info, msg: 'client connected', address: '127.0.0.1', protocol: '5.0' });
    expect(typeof connected.time).toBe('number');

    await client.endAsync();
    const left = await log.waitFor((r) => r.event === 'client.disconnected' && r.clientId === 'log-a', 'client.disconnected for log-a');
    expect(left).toMatchObject({ level: LEVEL.info, msg: 'client disconnected', protocol: '5.0', reason: 'DISCONNECT from the client', reasonCode: '0x00' });

    const v4 = await connectClient(t.url, { protocolVersion: 4, clientId: 'log-b' });
    expect(await log.waitFor((r) => r.event === 'client.connected' && r.clientId === 'log-b', 'client.connected for log-b')).toMatchObject({ protocol: '3.1.1' });
    v4.end(true);
    const dropped = await log.waitFor((r) => r.event === 'client.disconnected' && r.clientId === 'log-b', 'client.disconnected for log-b');
    expect(dropped.reason).toMatch(/^(connection closed by the client|socket error: .*)$/);
  });

  it('a protocol error: a warn record with the reason code and message, then the disconnect with the same reason', async () => {
    const { t, log } = await loggedBroker();
    const { client } = await connectRaw(t.port, { clientId: 'log-bad' });
    client.send(rawConnectPacket({ clientId: 'log-bad' }));
    const error = await log.waitFor((r) => r.event === 'protocol.error', 'protocol.error');
    expect(error).toMatchObject({
      level: LEVEL.warn, clientId: 'log-bad', address: '127.0.0.1', protocol: '5.0', reasonCode: '0x82', error: 'Protocol Error: second CONNECT on one connection',
    });
    expect(error.msg).toMatch(/protocol error/);
    const left = await log.waitFor((r) => r.event === 'client.disconnected' && r.clientId === 'log-bad', 'client.disconnected for log-bad');
    expect(left).toMatchObject({ reasonCode: '0x82', reason: 'Protocol Error: second CONNECT on one connection' });
  });

  it('a refused CONNECT and a connection closed before CONNECT (debug) are logged too', async () => {
    const { t, log } = await loggedBroker({ logLevel: 'debug', connectTimeout: 0.2 });
    await connectRaw(t.port, { clientId: '', clean: false, protocolVersion: 4 });
    expect(await log.waitFor((r) => r.event === 'connect.refused', 'connect.refused')).toMatchObject({ level: LEVEL.warn, reasonCode: '0x85', protocol: '3.1.1' });
    const idle = await openRawClient(t.port);
    await idle.waitClosed();
    const closed = await log.waitFor((r) => r.event === 'connection.closed' && r.reason === 'connect timeout: no CONNECT in time', 'connection.closed by the connect timeout');
    expect(closed.level).toBe(LEVEL.debug);
  });

  it('limit hits are logged at warn, at most once per 10 s per limit, with the number not logged', async () => {
    const clock = { t: 1_000_000 };
    const { t, log } = await loggedBroker({ maxConnections: 1, clock: { now: () => clock.t } });
    await connectRaw(t.port, { clientId: 'holder' });
    for (let i = 0; i < 3; i++) await (await openRawClient(t.port)).waitClosed();
    const first = await log.waitFor((r) => r.event === 'limit', 'a limit record');
    expect(first).toMatchObject({ level: LEVEL.warn, limit: 'maxConnections', maxConnections: 1, address: '127.0.0.1' });
    expect(first.suppressed).toBeUndefined();
    expect(log.records.filter((r) => r.event === 'limit')).toHaveLength(1);

    clock.t += 10_000;
    await (await openRawClient(t.port)).waitClosed();
    const second = await log.waitFor((r) => r.event === 'limit' && r !== first, 'a second limit record after 10 s');
    expect(second).toMatchObject({ limit: 'maxConnections', suppressed: 2 });
    expect(t.broker.metrics.connectionsRejected.maxConnections).toBe(4);
  });

  it('logLevel filters: at warn, connects are not logged but protocol errors are', async () => {
    const { t, log } = await loggedBroker({ logLevel: 'warn' });
    const { client } = await connectRaw(t.port, { clientId: 'quiet' });
    client.send(rawConnectPacket({ clientId: 'quiet' }));
    await log.waitFor((r) => r.event === 'protocol.error', 'protocol.error');
    await client.waitClosed();
    expect(log.records.filter((r) => r.level < LEVEL.warn)).toEqual([]);
  });

  it('startup and shutdown: broker.listening, then broker.closing (with the connection count) and broker.closed', async () => {
    const { t, log } = await loggedBroker();
    await connectClient(t.url, { protocolVersion: 5, clientId: 'stay' });
    await log.waitFor((r) => r.event === 'client.connected', 'client.connected');
    await t.close();
    const events = log.records.map((r) => r.event);
    expect(events[0]).toBe('broker.listening');
    expect(log.records.find((r) => r.event === 'broker.closing')).toMatchObject({ level: LEVEL.info, connections: 1 });
    expect(log.records.find((r) => r.event === 'client.disconnected' && r.clientId === 'stay')).toMatchObject({ reasonCode: '0x8b', reason: 'server shutting down' });
    expect(events.at(-1)).toBe('broker.closed');
  });

  it('without a logger the broker logs nothing (a library does not write to the console)', async () => {
    const broker = createBroker({ sysInterval: 0 });
    expect(broker.core.log.level).toBe('silent');
    await broker.close();
  });
});
