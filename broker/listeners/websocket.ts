/**
 * MQTT over WebSocket (ws) and secure WebSocket (wss): an HTTP(S) server whose upgrades to the
 * endpoint path become WebSockets, each handed to the broker as a byte stream. Upgrades elsewhere
 * get 404 and upgrades without the MQTT subprotocol 400; neither reaches the broker.
 */
import http from 'node:http';
import https from 'node:https';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { certificateIdentity, reportHandshakeErrors, tlsServerOptions } from './tls.js';
import type { ListenerContext, TransportIdentity, WsListenerSpec, WssListenerSpec } from './types.js';
import { webSocketStream } from './websocket-stream.js';

export const defaultWebSocketPath = '/mqtt';

/**
 * [MQTT-6.0.0-3] clients offer "mqtt"; [MQTT-6.0.0-4] the server selects "mqtt". MQTT 3.1 clients
 * (MQTT.js among them, for protocol level 3) offer "mqttv3.1", which is accepted when "mqtt" is not offered.
 */
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'] as const;

function chooseSubprotocol(offered: ReadonlySet<string>): string | false {
  return SUBPROTOCOLS.find((p) => offered.has(p)) ?? false;
}

function offeredSubprotocols(req: http.IncomingMessage): Set<string> {
  const header = req.headers['sec-websocket-protocol'];
  return new Set((header ?? '').split(',').map((p) => p.trim()).filter((p) => p !== ''));
}

function requestPath(req: http.IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '';
  }
}

interface Refusal {
  status: number;
  reason: string;
  body: string;
}

/** Why an upgrade request is refused before the WebSocket handshake, or undefined to go ahead. */
function checkUpgrade(req: http.IncomingMessage, path: string): Refusal | undefined {
  const asked = requestPath(req);
  if (asked !== path) {
    return { status: 404, reason: 'Not Found', body: `no MQTT endpoint at ${asked}; connect to ${path}` };
  }
  if (chooseSubprotocol(offeredSubprotocols(req)) === false) {
    return { status: 400, reason: 'Bad Request', body: 'MQTT over WebSocket needs the subprotocol "mqtt" (Sec-WebSocket-Protocol)' };
  }
  return undefined;
}

function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  socket.on('error', () => {});
  const body = Buffer.from(`${refusal.body}\n`);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${refusal.status} ${refusal.reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body.toString()}`,
  );
}

export function createWebSocketServer(spec: WsListenerSpec | WssListenerSpec, context: ListenerContext): Server {
  const path = spec.path ?? defaultWebSocketPath;
  // A client that opens a connection and never completes its upgrade is bounded like one that never sends CONNECT.
  const bound = Math.ceil(context.connectTimeout * 1000);
  const httpOptions: http.ServerOptions = bound > 0 ? { headersTimeout: bound, requestTimeout: bound } : {};
  const server: Server = spec.type === 'wss'
    ? https.createServer({ ...tlsServerOptions(spec, context), ...httpOptions })
    : http.createServer(httpOptions);
  if (server instanceof tls.Server) reportHandshakeErrors(server, context);
  const webSockets = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    handleProtocols: chooseSubprotocol,
    // One frame is buffered whole before it is read: bound it by what the broker would accept anyway.
    maxPayload: 2 * context.maxPacketSize,
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const atEndpoint = requestPath(req) === path;
    res.writeHead(atEndpoint ? 426 : 404, { 'content-type': 'text/plain; charset=utf-8', connection: 'close', ...(atEndpoint ? { upgrade: 'websocket' } : {}) });
    res.end(atEndpoint ? `MQTT over WebSocket: upgrade to the subprotocol "mqtt"\n` : `no MQTT endpoint here; connect to ${path}\n`);
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const remoteAddress = (req.socket as Socket).remoteAddress;
    const refusal = checkUpgrade(req, path);
    if (refusal !== undefined) {
      refuseUpgrade(socket, refusal);
      context.onClientError(new Error(`WebSocket upgrade refused with ${refusal.status}: ${refusal.body}`), remoteAddress);
      return;
    }
    webSockets.handleUpgrade(req, socket, head, (webSocket) => {
      const identity: TransportIdentity = spec.type === 'wss' ? certificateIdentity(req.socket as TLSSocket) : {};
      context.accept(webSocketStream(webSocket), remoteAddress, identity);
    });
  });

  server.on('close', () => webSockets.close());
  return server;
}
