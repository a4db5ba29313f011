/**
 * One WebSocket as the byte stream a Connection reads and writes: the payloads of binary frames in,
 * each write out as one binary frame. Backpressure goes both ways: a full read buffer pauses the
 * socket, and a write completes only when ws has handed the frame to the network.
 */
import { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';

/** RFC 6455 close code 1003: "received a type of data it cannot accept". */
const UNSUPPORTED_DATA = 1003;
const NORMAL_CLOSURE = 1000;

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export function webSocketStream(socket: WebSocket): Duplex {
  const stream = new Duplex({
    read() {
      if (socket.isPaused) socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (socket.readyState !== WebSocket.OPEN) {
        callback(new Error('the WebSocket is closed'));
        return;
      }
      socket.send(chunk, { binary: true }, (err) => callback(err ?? null));
    },
    final(callback) {
      if (socket.readyState === WebSocket.OPEN) socket.close(NORMAL_CLOSURE);
      callback();
    },
    destroy(err, callback) {
      // A socket already CLOSING is sending its close frame; ws ends it once answered (or after its close timeout).
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.terminate();
      callback(err);
    },
  });
  socket.on('message', (data, isBinary) => {
    if (!isBinary) {
      // [MQTT-6.0.0-1] MQTT travels in binary frames; any other data frame closes the connection.
      socket.close(UNSUPPORTED_DATA, 'MQTT needs binary frames');
      stream.destroy();
      return;
    }
    if (!stream.push(toBuffer(data))) socket.pause();
  });
  // The peer closed: what it sent before is still read, then the stream ends.
  socket.on('close', () => stream.push(null));
  socket.on('error', (err) => stream.destroy(err));
  return stream;
}
