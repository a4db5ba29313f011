export * from './packets.js';
export * from './reason-codes.js';
export { ProtocolError } from './errors.js';
export { PacketParser, type ParserOptions } from './parser.js';
export { encodePacket, encodePublish, encodePublishHeader, publishPacketIdOffset } from './encoder.js';
export { propertySpecs, type PropertyContext } from './properties.js';
