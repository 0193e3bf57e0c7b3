// The client, the worker and the router against a real shardzd (its path in SHARDZ_SHARDZD,
// which the ctest entry js/unit sets; SHARDZ_REQUIRE_SHARDZD=1 there makes its absence a
// failure): namespaces, nodes, drain and undrain, a move, status, errors, and router lookups
// that agree with the coordinator's own /lookup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Router, Worker, ShardzError } from '../src/index.js';

async function until(what, cond, ms = 20000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function rejectsWith(p, status, code) {
  await assert.rejects(p, (err) => err instanceof ShardzError && err.status === status && (!code || err.code === code));
}

test('client, workers and router against shardzd', async (t) => {
  const bin = process.env.SHARDZ_SHARDZD;
  if (!bin) {
    assert.ok(!process.env.SHARDZ_REQUIRE_SHARDZD, 'SHARDZ_SHARDZD is not set');
    t.skip('SHARDZ_SHARDZD not set (the ctest entry js/unit sets it)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'shardz-js-'));
  const addr = `127.0.0.1:${await freePort()}`;
  const log = openSync(join(dir, 'shardzd.log'), 'a');
  const d = spawn(bin, ['--listen', addr, '--data', join(dir, 'data')], { stdio: ['ignore', log, log] });
  const workers = [];
  let router;
  try {
    await until('shardzd ready', async () => {
      try {
        return (await fetch(`http://${addr}/healthz`)).status === 200;
      } catch {
        return false;
      }
    });
    const c = new Client({ coordinators: addr });
    const ns = await c.createNamespace({ name: 'kv', sharder: 'hash', partitions: 8, ping_interval_ms: 50, dead_after_ms: 3000, slots: 1024 }); // nothing here judges failure detection: a dead-after a loaded machine cannot flap (400 ms once left w2 suspect at the operator move)
    assert.equal(ns.name, 'kv');
    assert.equal(typeof ns.revision, 'bigint');
    await rejectsWith(c.createNamespace({ name: 'kv' }), 409, 'EEXIST');
    await rejectsWith(c.namespace('nope'), 404, 'ENOENT');
    assert.deepEqual((await c.namespaces()).map((n) => n.name), ['kv']);
    assert.equal((await c.status()).role, 'leader');

    const served = { w1: new Set(), w2: new Set() };
    for (const id of ['w1', 'w2']) {
      const w = new Worker({
        coordinators: addr, namespace: 'kv', nodeId: id, listen: '127.0.0.1:0', zone: `z${id}`, log: () => {},
        serve: (r) => { served[id].add(r.partition); },
        delete: (r) => { served[id].delete(r.partition); },
      });
      await w.start();
      workers.push(w);
    }
    await until('both serve 4', () => served.w1.size === 4 && served.w2.size === 4);
    const { nodes, revision } = await c.nodes('kv');
    assert.equal(nodes.length, 2);
    assert.ok(revision > 0n);
    assert.equal(nodes.find((n) => n.id === 'w1').zone, 'zw1');

    router = new Router({ coordinators: addr, namespace: 'kv', log: () => {} });
    await router.start();
    for (let i = 0; i < 20; i++) {
      const key = `{user${i}}:x`;
      const want = await c.request('GET', `/v1/namespaces/kv/lookup?key=${encodeURIComponent(key)}`);
      const { route, slot } = router.snapshot().lookupKey(key);
      assert.equal(route.partition, want.partition, key);
      assert.equal(BigInt(slot), want.slot, key);
    }

    await c.drain('kv', 'w1');
    await until('w1 drained', () => served.w1.size === 0 && served.w2.size === 8);
    await until('the router sees the drain', () => router.snapshot().partitions().every((p) => p.target >= 0 && p.replicas[p.target].node === 'w2'));
    await c.undrain('kv', 'w1');
    await until('w1 back', () => served.w1.size === 4 && served.w2.size === 4);

    await until('w2 alive', async () => (await c.node('kv', 'w2')).state === 'alive');
    const w1 = await c.node('kv', 'w1');
    const pid = w1.partitions[0].partition;
    assert.equal((await c.move('kv', pid, 0, 'w2')).partition, pid);
    await until('the move', async () => {
      const p = await c.partition('kv', pid);
      return p.replicas.length === 1 && p.replicas[0].node === 'w2' && p.replicas[0].state === 'serving';
    });
    await rejectsWith(c.move('kv', pid, 0, 'nobody'), 404);
    await c.deleteNamespace('kv');
    await rejectsWith(c.namespace('kv'), 404);
    c.close();
  } catch (err) {
    console.error(readFileSync(join(dir, 'shardzd.log'), 'utf8').slice(-4000));
    throw err;
  } finally {
    await router?.stop();
    for (const w of workers) await w.stop();
    d.kill('SIGKILL');
  }
});
