// The router's snapshot (hash slots, routed ranges, targets, refused states) and its watch loop
// against an in-memory coordinator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Router, Snapshot, keySlot } from '../src/index.js';

const hashState = `{"namespace":"kv","revision":7,"sharder":"hash","slots":64,
 "nodes":[{"id":"w1","address":"h1:1","zone":"a","state":"alive"},{"id":"w2","address":"h2:2","zone":"b","state":"suspect"}],
 "partitions":[
  {"id":"p1","generation":3,"slots":[[0,32]],"replicas":[
    {"node":"w2","slot":1,"role":"secondary","state":"serving","generation":3},
    {"node":"w1","address":"h1:1","slot":0,"role":"primary","state":"serving","generation":2}]},
  {"id":"p0","generation":1,"slots":[[32,48],[56,64]],"replicas":[
    {"node":"w1","slot":0,"role":"none","state":"adding"}]}]}`;

test('a hash snapshot: slots, targets, addresses from nodes', () => {
  const s = new Snapshot(hashState);
  const p1 = s.lookupPartition('p1');
  assert.equal(p1.target, 0);
  assert.equal(p1.replicas[0].role, 'primary');
  assert.equal(p1.replicas[1].address, 'h2:2');
  assert.equal(p1.replicas[1].nodeState, 'suspect');
  assert.equal(p1.replicas[0].generation, 2n);
  assert.equal(s.lookupPartition('p0').target, -1);
  assert.equal(s.partitions()[0].partition, 'p0');
  let missing = 0;
  for (let i = 0; i < 2000; i++) {
    const key = `user:${i}`;
    const slot = keySlot(key, 64);
    const { route, slot: got } = s.lookupKey(key);
    assert.equal(got, slot);
    if (slot < 32) assert.equal(route.partition, 'p1');
    else if (slot >= 48 && slot < 56) {
      missing++;
      assert.equal(route, null);
    } else assert.equal(route.partition, 'p0');
  }
  assert.ok(missing > 0, 'no key fell on an unheld slot');
  assert.ok(Object.isFrozen(s) && Object.isFrozen(p1));
});

test('a range snapshot and refused states', () => {
  const s = new Snapshot(`{"revision":4,"sharder":"range","partitions":[
    {"id":"r2","range":{"lo":"m","hi":null},"replicas":[]},
    {"id":"r0","range":{"lo":"","hi":"g"},"replicas":[]},
    {"id":"r1","range":{"lo":"g","hi":"m"},"replicas":[]},
    {"id":"r3","range":{"lo":"g","hi":"j"},"routed":false,"replicas":[]}]}`);
  for (const [key, want] of Object.entries({ '': 'r0', a: 'r0', 'f\u00ff': 'r0', g: 'r1', h: 'r1', lzz: 'r1', m: 'r2', zzz: 'r2', '\u00ff': 'r2' })) {
    assert.equal(s.lookupKey(key).route.partition, want, key);
  }
  for (const bad of [
    '{"revision":1,"sharder":"range","partitions":[{"id":"a","range":{"lo":"","hi":"g"}},{"id":"b","range":{"lo":"h","hi":null}}]}',
    '{"revision":1,"sharder":"range","partitions":[{"id":"a","range":{"lo":"","hi":"g"}}]}',
    '{"revision":1,"sharder":"hash","slots":64,"partitions":[{"id":"a","slots":[[0,40]]},{"id":"b","slots":[[30,64]]}]}',
    '{"revision":1,"sharder":"hash","slots":60,"partitions":[]}',
    '{"sharder":"hash","slots":64,"partitions":[]}',
  ]) assert.throws(() => new Snapshot(bad), undefined, bad);
  assert.throws(() => new Snapshot('{"revision":1,"sharder":"replica","partitions":[]}').lookupKey('k'));
});

test('the router follows /watch; revisions beyond 2^53 stay exact', async () => {
  const big = 9007199254740993n; // 2^53 + 1
  let bumped = false; // once set, every watch answers the new state
  let parked = null; // the watch waiting now
  const newState = hashState.replace('"revision":7', `"revision":${big}`).replace('"id":"p0","generation":1', '"id":"p0","generation":9');
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/v1/namespaces/kv') res.end('{"name":"kv","sharder":"hash","slots":64}');
    else if (url.pathname === '/v1/namespaces/kv/state') res.end(bumped ? newState : hashState);
    else if (url.pathname === '/v1/namespaces/kv/watch') {
      if (bumped) {
        res.end(newState);
        return;
      }
      const t = setTimeout(() => {
        parked = null;
        res.end(`{"revision":${url.searchParams.get('revision')},"unchanged":true}`);
      }, 200);
      parked = () => {
        clearTimeout(t);
        res.end(newState);
      };
    } else {
      res.writeHead(404);
      res.end('{}');
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const r = new Router({ coordinators: `127.0.0.1:${srv.address().port}`, namespace: 'kv', watchTimeoutMs: 1000, log: () => {} });
  await r.start(5000);
  assert.equal(r.revision, 7n);
  assert.equal(r.lookupPartition('p0').generation, 1n);
  bumped = true;
  parked?.();
  await r.waitRevision(big, 5000);
  assert.equal(r.revision, big);
  assert.equal(r.lookupPartition('p0').generation, 9n);
  await r.stop();
  await new Promise((res) => { srv.close(res); srv.closeAllConnections?.(); });
});
