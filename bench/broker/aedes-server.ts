/**
 * Aedes in its own process, as BENCHMARKING.md describes it: default options behind a plain TCP server.
 *
 *   node dist/bench/broker/aedes-server.js PORT [HOST]
 *
 * Prints `listening PORT` on stdout once the server accepts connections; exits on SIGTERM/SIGINT.
 */
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2] ?? 0);
const host = process.argv[3] ?? '127.0.0.1';

const aedes = await Aedes.createBroker();
const server = net.createServer(aedes.handle);
server.listen(port, host, () => {
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  process.stdout.write(`listening ${bound}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => process.exit(0));
}
