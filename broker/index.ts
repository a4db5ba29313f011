export { createBroker, type Broker } from './broker.js';
export { defaultBrokerOptions, type BrokerOptions, type Authenticator, type AuthRequest, type AuthResult } from './options.js';
export type { BrokerMetrics } from './metrics.js';
export { MemoryStore } from './store/memory.js';
export type { Store } from './store/types.js';
export { TlsSetupError, type ListenerSpec, type ListenerType, type TlsOptions, type TransportIdentity } from './listeners/index.js';
export { MetricsListenError } from './prometheus.js';
export type { LogLevel } from './log.js';
