/** What a listener is asked to open, and what it is given to hand its clients to the broker. */
import type { Duplex } from 'node:stream';

export type ListenerType = 'tcp' | 'tls' | 'ws' | 'wss';

/** The server side of TLS, as PEM text (or the bytes of PEM files). */
export interface TlsOptions {
  /** The server certificate, followed by any intermediate certificates. */
  cert: string | Buffer;
  /** The private key of cert. */
  key: string | Buffer;
  /** CA certificate(s) that sign client certificates; required by requireClientCert. */
  ca?: string | Buffer;
  /** Mutual TLS: the handshake fails unless the client presents a certificate signed by ca. */
  requireClientCert?: boolean;
}

interface ListenerAddress {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
}

interface WebSocketEndpoint {
  /** HTTP path of the WebSocket endpoint; default /mqtt. */
  path?: string;
}

export type TcpListenerSpec = { type: 'tcp' } & ListenerAddress;
export type TlsListenerSpec = { type: 'tls' } & ListenerAddress & TlsOptions;
export type WsListenerSpec = { type: 'ws' } & ListenerAddress & WebSocketEndpoint;
export type WssListenerSpec = { type: 'wss' } & ListenerAddress & WebSocketEndpoint & TlsOptions;
export type ListenerSpec = TcpListenerSpec | TlsListenerSpec | WsListenerSpec | WssListenerSpec;

/** What the transport learned about a client besides its bytes. */
export interface TransportIdentity {
  /** Subject CN of the client certificate the TLS handshake verified (mutual TLS). */
  certificateCommonName?: string;
}

export interface ListenerContext {
  /** Serves one client stream (Broker.handle). */
  accept(stream: Duplex, remoteAddress: string | undefined, identity: TransportIdentity): void;
  /** A client failed before it became a stream: a bad TLS handshake, a refused WebSocket upgrade. */
  onClientError(error: Error, remoteAddress: string | undefined): void;
  /** Seconds a new connection may take to send CONNECT (0 = no bound); also bounds the TLS handshake. */
  connectTimeout: number;
  /** Largest MQTT packet the broker accepts; bounds the size of one WebSocket frame. */
  maxPacketSize: number;
}
