/**
 * The broker's structured log: pino records (one JSON line each) with an `event` field naming what
 * happened, so operators can filter on it. The broker never opens a destination itself — a library
 * does not write to the console — so without `options.logger` it logs nothing; `mqtt-sim broker`
 * passes a logger that writes to stderr.
 *
 * Events: client.connected, client.disconnected, connection.closed (debug: closed before CONNECT),
 * connect.refused, protocol.error, internal.error, limit (a limit was hit; rate-limited per limit),
 * listener.error, store.error, broker.listening, metrics.listening, broker.closing, broker.closed.
 */
import pino, { type Logger } from 'pino';
import type { ProtocolVersion } from '../protocol/packets.js';
import type { Connection } from './connection.js';

export const logLevels = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof logLevels)[number];
export type { Logger };

const silent: Logger = pino({ level: 'silent' }, { write: () => {} });

/** The logger the broker writes to: `logger` at `level`, or one that discards everything. */
export function brokerLogger(logger: Logger | undefined, level: LogLevel): Logger {
  if (logger === undefined || level === 'silent') return silent;
  return logger.child({}, { level });
}

/** "3.1", "3.1.1" or "5.0", as operators know the protocol levels. */
export function protocolName(version: ProtocolVersion): string {
  return version === 5 ? '5.0' : version === 4 ? '3.1.1' : '3.1';
}

/** Why a connection ended, recorded by whoever ended it (the first cause wins). */
export interface CloseReason {
  reason: string;
  /** The MQTT 5 reason code sent or received, when there is one. */
  reasonCode?: number;
}

export function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}

/** The fields that identify a connection in every record about it. */
export function connectionFields(conn: Connection): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (conn.clientId !== '') fields.clientId = conn.clientId;
  if (conn.remoteAddress !== undefined) fields.address = conn.remoteAddress;
  if (conn.state !== 'awaiting-connect') fields.protocol = protocolName(conn.version);
  return fields;
}

export function logClientConnected(log: Logger, conn: Connection, sessionExpiry: number): void {
  if (!log.isLevelEnabled('info')) return;
  log.info({ event: 'client.connected', ...connectionFields(conn), sessionExpiry }, 'client connected');
}

/** One record per closed connection: info for clients that had connected, debug for the others. */
export function logConnectionClosed(log: Logger, conn: Connection, wasConnected: boolean, reason: CloseReason | undefined): void {
  const level = wasConnected ? 'info' : 'debug';
  if (!log.isLevelEnabled(level)) return;
  const why = reason ?? { reason: 'connection closed' };
  const record = {
    event: wasConnected ? 'client.disconnected' : 'connection.closed',
    ...connectionFields(conn),
    reason: why.reason,
    ...(why.reasonCode !== undefined ? { reasonCode: hex(why.reasonCode) } : {}),
  };
  log[level](record, wasConnected ? 'client disconnected' : 'connection closed before CONNECT');
}

/**
 * Limit hits logged at warn, at most once per `intervalMs` per limit: a reconnect storm or a
 * slowloris attack must not turn into a log storm. Every hit is still counted in the metrics; the
 * record says how many hits were not logged since the previous one (`suppressed`).
 */
export class LimitLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly intervalMs = 10_000,
  ) {}

  hit(limit: string, fields: Record<string, unknown>, message: string): void {
    if (!this.log.isLevelEnabled('warn')) return;
    const now = this.now();
    const state = this.last.get(limit);
    if (state !== undefined && now - state.at < this.intervalMs && now >= state.at) {
      state.suppressed++;
      return;
    }
    const suppressed = state?.suppressed ?? 0;
    this.last.set(limit, { at: now, suppressed: 0 });
    this.log.warn({ event: 'limit', limit, ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, message);
  }
}
