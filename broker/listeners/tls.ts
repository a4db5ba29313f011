/**
 * MQTT over TLS, and the TLS side shared with secure WebSocket: server options from the
 * certificate files, the client certificate's CN as the connection's identity, and handshake
 * failures reported instead of thrown.
 */
import type { Server } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { ListenerContext, TlsListenerSpec, TlsOptions, TransportIdentity } from './types.js';

/** The certificate, key or CA of a listener cannot be used; a configuration mistake, not a bug. */
export class TlsSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsSetupError';
  }
}

/** Throws TlsSetupError when the certificate, key or CA cannot serve: not PEM, a key that does not match, no CA for mutual TLS. */
export function checkTlsOptions(options: TlsOptions): void {
  if (options.requireClientCert === true && options.ca === undefined) {
    // Without a CA Node would verify client certificates against the public roots: any certificate
    // bought from a public CA would be let in.
    throw new TlsSetupError('requireClientCert needs ca, the CA certificate that signs client certificates');
  }
  try {
    tls.createSecureContext({ cert: options.cert, key: options.key, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
  } catch (err) {
    throw new TlsSetupError(err instanceof Error ? err.message : String(err));
  }
}

export function tlsServerOptions(options: TlsOptions, context: ListenerContext): tls.TlsOptions {
  checkTlsOptions(options);
  const requireClientCert = options.requireClientCert === true;
  return {
    cert: options.cert,
    key: options.key,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    requestCert: requireClientCert,
    rejectUnauthorized: requireClientCert,
    minVersion: 'TLSv1.2',
    // A client that opens a socket and never completes the handshake is bounded like one that never sends CONNECT.
    ...(context.connectTimeout > 0 ? { handshakeTimeout: context.connectTimeout * 1000 } : {}),
  };
}

/** The subject CN of a verified client certificate; none when unverified, absent or ambiguous (several CNs). */
export function certificateIdentity(socket: TLSSocket): TransportIdentity {
  if (!socket.authorized) return {};
  const commonName: unknown = socket.getPeerCertificate().subject?.CN;
  return typeof commonName === 'string' && commonName !== '' ? { certificateCommonName: commonName } : {};
}

/** A failed handshake (plain TCP on the TLS port, no or untrusted client certificate) ends that socket only. */
export function reportHandshakeErrors(server: tls.Server, context: ListenerContext): void {
  server.on('tlsClientError', (err, socket) => {
    // Node reports a handshake timeout without closing the socket; every failed handshake ends here.
    socket.destroy();
    // A client certificate that fails verification is dropped by Node without an alert, and reported as a
    // hang-up; the verification result says what really happened.
    const refused: unknown = socket.authorizationError;
    const reported = refused === undefined || refused === null
      ? err
      : Object.assign(new Error(`client certificate refused: ${String(refused)}`), { code: String(refused), cause: err });
    context.onClientError(reported, socket.remoteAddress);
  });
}

export function createTlsServer(spec: TlsListenerSpec, context: ListenerContext): Server {
  const server = tls.createServer(tlsServerOptions(spec, context), (socket) => {
    socket.setNoDelay(true);
    context.accept(socket, socket.remoteAddress, certificateIdentity(socket));
  });
  reportHandshakeErrors(server, context);
  return server;
}
