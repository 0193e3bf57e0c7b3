// Router key lookups in the JavaScript package (js/src/router.js), on the synthetic state
// bench/bench_router.c builds (1024 partitions x 3 replicas on 100 nodes, 16384 slots in
// contiguous runs, 100,000 distinct keys "user:<n>"): hashing alone (src/xxh3.js), a snapshot
// lookup, the router's lookup, by partition id, and building a snapshot. Prints ns per lookup, the
// core count and Node's version. Run by bench/clients/run.sh:
//
//   node bench/clients/router.mjs [--lookups N]
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Router, Snapshot, keySlot } from '../../js/src/index.js';

const { values } = parseArgs({ options: { lookups: { type: 'string', default: '5000000' } } });
const LOOKUPS = Number(values.lookups);
const PARTS = 1024;
const REPLICAS = 3;
const NODES = 100;
const SLOTS = 16384;
const KEYS = 100000;

function benchState(revision) {
  const nodes = Array.from({ length: NODES }, (_, i) => `{"id":"n${String(i).padStart(5, '0')}","address":"10.0.${Math.floor(i / 250)}.${i % 250}:9100","state":"alive"}`);
  const parts = Array.from({ length: PARTS }, (_, i) => {
    const lo = Math.floor((i * SLOTS) / PARTS);
    const hi = Math.floor(((i + 1) * SLOTS) / PARTS);
    const reps = Array.from({ length: REPLICAS }, (_, r) => `{"node":"n${String((i + r) % NODES).padStart(5, '0')}","slot":${r},"role":"${r === 0 ? 'primary' : 'secondary'}","state":"serving"}`);
    return `{"id":"p${String(i).padStart(6, '0')}","generation":${revision},"slots":[[${lo},${hi}]],"replicas":[${reps.join(',')}]}`;
  });
  return `{"revision":${revision},"slots":${SLOTS},"sharder":"hash","nodes":[${nodes.join(',')}],"partitions":[${parts.join(',')}]}`;
}

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`);
const ids = Array.from({ length: PARTS }, (_, i) => `p${String(i).padStart(6, '0')}`);

function measure(name, n, fn) {
  fn(Math.min(n, 200000)); // warm up the JIT
  const t0 = process.hrtime.bigint();
  const sink = fn(n);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${name.padEnd(40)} ${ns.toFixed(1).padStart(8)} ns/op   (${n} ops, sink ${sink})`);
}

console.log(`cores: ${os.cpus().length}, node ${process.version}, ${LOOKUPS} lookups per row, ${KEYS} keys`);
const state = benchState(1);
const snap = new Snapshot(state);
for (const k of keys.slice(0, 1000)) { // every key where its slot's run says
  const { route, slot } = snap.lookupKey(k);
  if (slot !== keySlot(k, SLOTS) || route.partition !== `p${String(Math.floor((slot * PARTS) / SLOTS)).padStart(6, '0')}`) throw new Error(`bad lookup ${k}`);
}
const router = new Router({ coordinators: '127.0.0.1:1', namespace: 'bench' });
router.install(snap); // no coordinator: the router is fed directly

measure('keySlot (XXH3 + hash tag)', LOOKUPS, (n) => {
  let x = 0;
  for (let i = 0, j = 0; i < n; i++) {
    x += keySlot(keys[j], SLOTS);
    if (++j === KEYS) j = 0;
  }
  return x;
});
measure('Snapshot.lookupKey', LOOKUPS, (n) => {
  let x = 0;
  for (let i = 0, j = 0; i < n; i++) {
    x += snap.lookupKey(keys[j]).route.target;
    if (++j === KEYS) j = 0;
  }
  return x;
});
measure('Router.lookupKey', LOOKUPS, (n) => {
  let x = 0;
  for (let i = 0, j = 0; i < n; i++) {
    x += router.lookupKey(keys[j]).route.target;
    if (++j === KEYS) j = 0;
  }
  return x;
});
measure('Router.lookupPartition', LOOKUPS, (n) => {
  let x = 0;
  for (let i = 0, j = 0; i < n; i++) {
    x += router.lookupPartition(ids[j]).target;
    if (++j === PARTS) j = 0;
  }
  return x;
});
const t0 = process.hrtime.bigint();
for (let i = 0; i < 10; i++) new Snapshot(benchState(i + 2));
console.log(`${'building a snapshot from its state'.padEnd(40)} ${(Number(process.hrtime.bigint() - t0) / 10 / 1e6).toFixed(1).padStart(8)} ms     (${state.length} bytes)`);
