/** Plain MQTT over TCP: every accepted socket is already the stream a Connection reads. */
import net from 'node:net';
import type { ListenerContext } from './types.js';

export function createTcpServer(context: ListenerContext): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    context.accept(socket, socket.remoteAddress, {});
  });
}
