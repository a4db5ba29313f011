/**
 * Test helpers: a throwaway PKI made with selfsigned — a CA, a server certificate for 127.0.0.1 and
 * localhost, client certificates signed by the CA, and one signed by a CA the broker does not trust.
 * EC keys keep generation fast (well under a second for the lot).
 */
import selfsigned from 'selfsigned';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestPki {
  ca: KeyPair;
  server: KeyPair;
  /** Signed by `ca`, with subject CN `sensor-42`. */
  client: KeyPair;
  /** Signed by an unrelated CA, with subject CN `intruder`. */
  untrustedClient: KeyPair;
}

async function certificateAuthority(commonName: string): Promise<KeyPair> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

async function signed(ca: KeyPair, commonName: string, role: 'server' | 'client'): Promise<KeyPair> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      role === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
      ...(role === 'server'
        ? [{ name: 'subjectAltName' as const, altNames: [{ type: 2 as const, value: 'localhost' }, { type: 7 as const, ip: '127.0.0.1' }] }]
        : []),
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export async function createTestPki(): Promise<TestPki> {
  const ca = await certificateAuthority('mqtt-sim test CA');
  const otherCa = await certificateAuthority('somebody else');
  const [server, client, untrustedClient] = await Promise.all([
    signed(ca, 'localhost', 'server'),
    signed(ca, 'sensor-42', 'client'),
    signed(otherCa, 'intruder', 'client'),
  ]);
  return { ca, server, client, untrustedClient };
}
