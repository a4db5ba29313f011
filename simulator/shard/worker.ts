/**
 * The piscina task: one long-lived shard per worker thread. It runs until the orchestrator says
 * `finish` (or `abort`) over the MessagePort that came with the task, and resolves with the shard's
 * counters, histograms and ledgers.
 */
import type { MessagePort } from 'node:worker_threads';
import type { FromShard, ShardResult, ShardTask, ToShard } from './messages.js';
import { ShardRuntime, type ShardChannel, type ShardOptions } from './runtime.js';

function portChannel(port: MessagePort): ShardChannel {
  return {
    post: (message: FromShard) => port.postMessage(message),
    onMessage: (handler: (message: ToShard) => void) => port.on('message', handler),
    close: () => port.close(),
  };
}

export default async function runShardTask(task: ShardTask): Promise<ShardResult> {
  const port = task.port;
  const channel = portChannel(port);
  const options: ShardOptions = { shard: task.shard, scenario: task.scenario, devices: task.devices, snapshotIntervalMs: task.snapshotIntervalMs };
  if (task.slice !== undefined) options.slice = task.slice;
  if (task.clockSkewMs !== undefined) options.clockSkewMs = task.clockSkewMs;
  const runtime = new ShardRuntime(options, channel);
  try {
    return await runtime.result();
  } finally {
    channel.close();
  }
}
