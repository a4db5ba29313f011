import { afterEach, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connectClient, startBroker, type TestBroker } from '../../helpers/broker.js';

let tb: TestBroker | undefined;
afterEach(async () => {
  await closeAllClients();
  await tb?.close();
  tb = undefined;
});

describe.each([4, 5] as const)('broker smoke, MQTT.js protocol %i', (protocolVersion) => {
  it.each([0, 1, 2] as const)('delivers a QoS %i publish to a subscriber', async (qos) => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, { protocolVersion, clientId: 'sub' });
    const inbox = collect(sub);
    await sub.subscribeAsync('a/+/c', { qos });
    const pub = await connectClient(tb.url, { protocolVersion, clientId: 'pub' });
    await pub.publishAsync('a/b/c', 'hello', { qos });
    const [m] = await inbox.waitFor(1);
    expect(m!.topic).toBe('a/b/c');
    expect(m!.payload.toString()).toBe('hello');
    expect(m!.packet.qos).toBe(qos);
  });
});
