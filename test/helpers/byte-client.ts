/**
 * Test helpers: a TCP client that speaks bytes, not packets — it sends exactly the bytes a test wrote
 * (malformed ones included, which protocol/encoder.ts would refuse to produce) and returns what the
 * broker sent as whole MQTT frames, byte for byte, so tests can compare exact bytes out.
 */
import net from 'node:net';
import { withTimeout } from './broker.js';

/**
 * Bytes from a hex template: whitespace is ignored and `//` starts a comment to the end of the line,
 * so a packet can be written one field per line.
 */
export function bytes(strings: TemplateStringsArray, ...values: unknown[]): Buffer {
  const text = strings.raw.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const digits = text.replace(/\/\/[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not an even run of hex digits: ${digits}`);
  return Buffer.from(digits, 'hex');
}

/** Hex of a buffer with a space between bytes, the form failure messages and expectations use. */
export function hex(buf: Buffer): string {
  return [...buf].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

const openByteClients = new Set<ByteClient>();

export class ByteClient {
  readonly socket: net.Socket;
  /** Resolves when the socket has closed (by either side). */
  readonly closed: Promise<void>;
  private received = Buffer.alloc(0);
  private readCursor = 0;
  private isClosed = false;
  private wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake?.();
    });
    socket.on('error', () => {
      // A reset by the broker is followed by 'close'; tests observe the closure.
    });
    this.closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        openByteClients.delete(this);
        this.wake?.();
        resolve();
      });
    });
  }

  static open(port: number, ms = 3000): Promise<ByteClient> {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const client = new ByteClient(socket);
    openByteClients.add(client);
    return withTimeout(
      new Promise<ByteClient>((resolve, reject) => {
        socket.once('connect', () => resolve(client));
        socket.once('error', reject);
      }),
      ms,
      `byte client never connected to port ${port}`,
    );
  }

  send(data: Buffer): void {
    this.socket.write(data);
  }

  /** Every byte received so far. */
  all(): Buffer {
    return this.received;
  }

  /**
   * The next whole frame (fixed header and body) the broker sent, as bytes. Rejects after `ms`, or
   * when the connection closes before a whole frame arrived.
   */
  async nextFrame(ms = 3000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    for (;;) {
      const frame = this.frameAt(this.readCursor);
      if (frame !== undefined) {
        this.readCursor += frame.length;
        return frame;
      }
      if (this.isClosed) {
        throw new Error(`connection closed before a whole frame arrived; unread bytes: ${hex(this.received.subarray(this.readCursor)) || '(none)'}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for a frame; unread bytes: ${hex(this.received.subarray(this.readCursor)) || '(none)'}`);
      await withTimeout(new Promise<void>((resolve) => { this.wake = resolve; }), left, 'frame').catch(() => undefined);
      this.wake = undefined;
    }
  }

  /** Waits (bounded) until the broker closed the connection; returns the bytes not yet read as frames. */
  async waitClosed(ms = 3000, what = 'the broker never closed the connection'): Promise<Buffer> {
    await withTimeout(this.closed, ms, `${what} (unread bytes: ${hex(this.received.subarray(this.readCursor)) || 'none'})`);
    return this.received.subarray(this.readCursor);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private frameAt(start: number): Buffer | undefined {
    const buf = this.received;
    let length = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4; i++) {
      if (start + i >= buf.length) return undefined;
      const byte = buf[start + i]!;
      length += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        const end = start + 1 + i + length;
        return end <= buf.length ? buf.subarray(start, end) : undefined;
      }
      multiplier *= 128;
    }
    throw new Error(`the broker sent a remaining length longer than 4 bytes: ${hex(buf.subarray(start, start + 5))}`);
  }
}

/** Destroys every byte client still open and waits for their sockets to close (for afterEach). */
export async function closeAllByteClients(): Promise<void> {
  const open = [...openByteClients];
  openByteClients.clear();
  for (const c of open) c.destroy();
  await Promise.all(open.map((c) => c.closed));
}
