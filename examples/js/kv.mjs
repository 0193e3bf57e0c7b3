// shardz-kv-js: a sharded in-memory key-value worker on the JavaScript package, the Node twin of
// examples/kv (shardz-kv). It serves GET/PUT /kv/<key> for keys whose partition it serves (the
// router's slot table says which partition a key is in) and answers 409 with the owner for the
// others; the shardz endpoint is mounted on the same port. Runs on the event loop.
//
//   node examples/js/kv.mjs --id w1 --listen 127.0.0.1:9301 --coordinator 127.0.0.1:7557 --namespace kv
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Worker, Router } from '../../js/src/index.js';

const { values: o } = parseArgs({
  options: {
    id: { type: 'string', default: 'w1' },
    listen: { type: 'string', default: '127.0.0.1:9301' },
    coordinator: { type: 'string', default: '127.0.0.1:7557' },
    namespace: { type: 'string', default: 'kv' },
  },
});

const parts = new Map(); // partition -> Map(key -> value): the data of the partitions served here
const worker = new Worker({
  coordinators: o.coordinator, namespace: o.namespace, nodeId: o.id, address: o.listen,
  serve: (r) => { if (!parts.has(r.partition)) parts.set(r.partition, new Map()); }, // a moved partition starts empty
  delete: (r) => { parts.delete(r.partition); },
});
const router = new Router({ coordinators: o.coordinator, namespace: o.namespace });

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/shardz/')) return worker.handler(req, res);
  if (!req.url.startsWith('/kv/')) {
    res.writeHead(404);
    return res.end();
  }
  const key = decodeURIComponent(req.url.slice(4));
  const { route } = router.lookupKey(key);
  const data = route && parts.get(route.partition);
  if (!data || !worker.leaseOk()) {
    const t = route?.replicas[route.target];
    res.writeHead(409, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ code: 'ESTALE', partition: route?.partition, owner: t?.node, address: t?.address }));
  }
  if (req.method === 'GET') {
    if (!data.has(key)) res.writeHead(404);
    return res.end(data.get(key) ?? '');
  }
  if (req.method !== 'PUT') {
    res.writeHead(405);
    return res.end();
  }
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    data.set(key, body);
    res.writeHead(204);
    res.end();
  });
});

const [host, port] = [o.listen.slice(0, o.listen.lastIndexOf(':')), Number(o.listen.slice(o.listen.lastIndexOf(':') + 1))];
await new Promise((resolve) => server.listen(port, host, resolve));
await worker.start();
await router.start(10000);
console.error(`shardz-kv-js ${o.id} serving on ${o.listen}`);

let leaving = false;
const shutdown = async () => {
  if (leaving) process.exit(1); // a second signal: at once
  leaving = true;
  await worker.leave(30000).catch((err) => console.error(`leave: ${err.message}`)); // partitions move away first
  await worker.stop();
  await router.stop();
  server.close();
  server.closeAllConnections?.();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
