export { createBroker, type Broker } from './broker.js';
export { defaultBrokerOptions, type BrokerOptions, type Authenticator, type AuthRequest, type AuthResult } from './options.js';
export type { BrokerMetrics } from './metrics.js';
export { MemoryStore } from './store/memory.js';
export type { Store } from './store/types.js';
