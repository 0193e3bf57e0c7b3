// The JavaScript package's router key lookup, for bench/clients/run.py (run by lookup_js):
// builds a Snapshot from a /state body, installs it in a Router, checks each key's slot, then
// times ROUNDS passes of Router.lookupKey over the keys. Prints one JSON line like the other
// lookup_<lang> programs.
import { readFileSync } from 'node:fs';
import { Router, Snapshot, keySlot } from '../../js/src/index.js';

if (process.argv.length !== 5) {
  process.stderr.write('usage: lookup_js STATE_JSON KEYS_FILE ROUNDS\n');
  process.exit(2);
}
const snap = new Snapshot(readFileSync(process.argv[2], 'utf8'));
const keys = readFileSync(process.argv[3], 'utf8').split('\n').filter((k) => k.length > 0);
const rounds = Number(process.argv[4]);
const router = new Router({ coordinators: '127.0.0.1:1', namespace: 'bench' });
router.install(snap); // no coordinator: the router is fed directly
let checksum = 0;
for (const k of keys) {
  const { route, slot } = snap.lookupKey(k);
  if (!route || slot !== keySlot(k, snap.slots)) throw new Error(`key ${k}`);
  checksum += slot;
}
let sink = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < rounds; i++) for (const k of keys) sink += router.lookupKey(k).route.target;
const n = rounds * keys.length;
const ns = Number(process.hrtime.bigint() - t0) / n;
console.log(JSON.stringify({ lang: 'js', lookups: n, ns_per_lookup: Math.round(ns * 10) / 10, checksum, last: router.lookupKey(keys[keys.length - 1]).route.partition, sink }));
