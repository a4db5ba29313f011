/**
 * Opens the byte stream a lean client speaks MQTT over. Transports only produce streams: TCP, TLS,
 * WebSocket and secure WebSocket by URL scheme, or whatever `options.createStream` builds (the hook
 * where a device's fault link plugs in). The client never sees which one it got.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import WebSocket, { createWebSocketStream } from 'ws';
import type { LeanClientOptions } from './types.js';

export interface OpenedStream {
  stream: Duplex;
  /** The event after which bytes can flow: 'secureConnect' for TLS, 'connect' for everything else. */
  readyEvent: 'connect' | 'secureConnect';
}

export type TransportScheme = 'mqtt' | 'mqtts' | 'ws' | 'wss';

const schemes: Readonly<Record<string, TransportScheme>> = {
  'mqtt:': 'mqtt', 'tcp:': 'mqtt', 'mqtts:': 'mqtts', 'ssl:': 'mqtts', 'tls:': 'mqtts', 'ws:': 'ws', 'wss:': 'wss',
};

const defaultPorts: Readonly<Record<TransportScheme, number>> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/** The transport for a URL, or an Error naming the URL and the schemes that work. */
export function transportScheme(url: URL): TransportScheme | Error {
  return schemes[url.protocol] ?? new Error(`unsupported URL scheme '${url.protocol}' in ${url.href}: use mqtt://, mqtts://, ws:// or wss://`);
}

/** Opens the stream for `url`. Errors (ECONNREFUSED, ...) arrive as the stream's 'error' event, never as a throw. */
export function openTransport(url: URL, options: LeanClientOptions): OpenedStream {
  if (options.createStream !== undefined) return { stream: options.createStream(url, options), readyEvent: 'connect' };
  const scheme = transportScheme(url);
  if (scheme instanceof Error) throw scheme;
  // URL keeps IPv6 literals bracketed ("[::1]"); sockets want them bare.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? defaultPorts[scheme] : Number(url.port);
  switch (scheme) {
    case 'mqtt': {
      const socket = net.connect({ host, port, noDelay: true, ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}) });
      return { stream: socket, readyEvent: 'connect' };
    }
    case 'mqtts': {
      const socket = tls.connect({
        host,
        port,
        // SNI must not be an IP address (RFC 6066 section 3).
        ...(net.isIP(host) === 0 ? { servername: host } : {}),
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        ...options.tls,
      });
      socket.setNoDelay(true);
      return { stream: socket, readyEvent: 'secureConnect' };
    }
    case 'ws':
    case 'wss':
      return { stream: openWebSocket(url, scheme, options), readyEvent: 'connect' };
  }
}

function openWebSocket(url: URL, scheme: 'ws' | 'wss', options: LeanClientOptions): Duplex {
  const target = new URL(url.href);
  if (target.pathname === '' || target.pathname === '/') target.pathname = '/mqtt';
  target.username = '';
  target.password = '';
  const ws = new WebSocket(target, 'mqtt', {
    perMessageDeflate: false,
    ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    ...(scheme === 'wss' ? options.tls : {}),
  });
  const stream = createWebSocketStream(ws);
  // A WebSocket duplex has no 'connect' of its own: the upgrade completing is when bytes can flow.
  ws.once('open', () => stream.emit('connect'));
  return stream;
}
