import { reasonCodeName } from './reason-codes.js';

/**
 * The only error the codec throws. `reasonCode` is the MQTT 5 reason code a broker or client sends
 * (in CONNACK or DISCONNECT) before closing the connection; for MQTT 3.1.1 peers the connection is just closed.
 */
export class ProtocolError extends Error {
  readonly reasonCode: number;

  constructor(reasonCode: number, message: string) {
    super(`${reasonCodeName(reasonCode)}: ${message}`);
    this.name = 'ProtocolError';
    this.reasonCode = reasonCode;
  }
}

export const malformed = (message: string): ProtocolError => new ProtocolError(0x81, message);
export const protocolViolation = (message: string): ProtocolError => new ProtocolError(0x82, message);
