// The worker against an in-memory coordinator (unit tests): registration, full and delta
// assignments, pings during a running hook, bad messages, the secret, the strict lease, load
// reports, leave, failover, a mounted handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Worker } from '../src/index.js';
import { fakeCoordinator, HookLog, FakeClock, post, rep, assign } from './helpers.js';

async function startWorker(f, h, extra = {}) {
  const w = new Worker({
    coordinators: f.addr, namespace: 'kv', nodeId: 'w1', listen: '127.0.0.1:0', zone: 'a',
    capacity: { cpu: 8 }, serve: h.serve, delete: h.delete, log: () => {}, ...extra,
  });
  await w.start();
  await w.waitRegistered(5000);
  return w;
}

async function withWorker(opts, fn) {
  const f = await fakeCoordinator(opts.coord);
  const h = new HookLog();
  const w = await startWorker(f, h, opts.worker);
  try {
    await fn({ f, h, w, addr: w.address });
  } finally {
    await w.stop();
    await f.close();
  }
}

/** A message without its stamp (PROTOCOL.md 4.1: this worker's clock, an integer >= 0) and
 * incarnation (a random name of this process), both checked here. */
function noStamp(body) {
  const { stamp, incarnation, ...rest } = body;
  assert.ok(Number.isInteger(stamp) && stamp >= 0, `stamp ${stamp}`);
  assert.ok(incarnation === undefined || /^[0-9a-f]{32}$/.test(incarnation), `incarnation ${incarnation}`);
  return rest;
}

test('register, full and delta assignments, stale and refused ones', () => withWorker({}, async ({ f, h, w, addr }) => {
  assert.deepEqual(noStamp(f.registers[0]), { id: 'w1', address: addr, zone: 'a', capacity: { cpu: 8 }, features: ['delta', 'term', 'transfer'] });
  let r = await post(addr, '/shardz/v1/assign', assign(10, '', rep('p2', 4, 'primary'), rep('p1', 2, 'none')));
  assert.equal(r.status, 200);
  assert.deepEqual(noStamp(r.body), { node: 'w1', applied_revision: 10, serving: [{ partition: 'p1', generation: 2 }, { partition: 'p2', generation: 4 }], failed: [] });
  assert.deepEqual(h.take(), ['serve p1 g2 none', 'serve p2 g4 primary']);

  r = await post(addr, '/shardz/v1/assign', assign(11, '', rep('p2', 5, 'primary'), rep('p3', 1, 'none')));
  assert.equal(r.body.applied_revision, 11);
  assert.deepEqual(h.take(), ['delete p1 assign', 'serve p2 g5 primary update(g4)', 'serve p3 g1 none']);

  r = await post(addr, '/shardz/v1/assign', assign(12, '', '{"partition":"p2","slot":1,"role":"primary","generation":5,"state":"dropping"}', rep('p3', 1, 'none')));
  assert.equal(r.status, 200);
  assert.deepEqual(h.take(), [], 'a state-only change calls nothing');

  r = await post(addr, '/shardz/v1/assign', assign(13, ',"base_revision":12,"removed":["p3"]', rep('p4', 7, 'none')));
  assert.deepEqual(noStamp(r.body), { node: 'w1', applied_revision: 13, delta: true, serving: [{ partition: 'p4', generation: 7 }], failed: [] });
  assert.deepEqual(h.take(), ['delete p3 assign', 'serve p4 g7 none']);

  r = await post(addr, '/shardz/v1/assign', assign(15, ',"base_revision":11', rep('p5', 1, 'none')));
  assert.equal(r.status, 409);
  assert.equal(r.body.code, 'ESTALE');
  assert.equal(r.body.applied_revision, 13);

  r = await post(addr, '/shardz/v1/assign', assign(5, ''));
  assert.equal(r.status, 200);
  assert.equal(r.body.applied_revision, 13);
  assert.deepEqual(r.body.serving, [{ partition: 'p2', generation: 5 }, { partition: 'p4', generation: 7 }]);
  assert.deepEqual(h.take(), [], 'stale and refused assignments call nothing');

  h.fail.add('p6');
  r = await post(addr, '/shardz/v1/assign', assign(16, '', rep('p2', 5, 'primary'), rep('p4', 7, 'none'), rep('p6', 1, 'none')));
  assert.deepEqual(r.body.failed, [{ partition: 'p6', error: 'disk full' }]);
  assert.ok(!r.text.includes('"partition":"p6","generation"'));
  const st = w.status();
  assert.equal(st.serving, 2);
  assert.equal(st.assignments, 5);
  assert.equal(st.deltasRefused, 1);
}));

test('64-bit revisions and generations stay exact', () => withWorker({}, async ({ h, addr }) => {
  const big = '9007199254740993'; // 2^53 + 1: a double would round it
  const r = await post(addr, '/shardz/v1/assign', assign(big, '', rep('p1', '9223372036854775807', 'none')));
  assert.equal(r.status, 200);
  assert.ok(r.text.includes(`"applied_revision":${big}`), r.text);
  assert.ok(r.text.includes('"generation":9223372036854775807'), r.text);
  assert.deepEqual(h.take(), ['serve p1 g9223372036854775807 none']);
}));

test('range bounds reach the hooks', () => withWorker({}, async ({ h, addr }) => {
  const r = await post(addr, '/shardz/v1/assign', assign(4, '', '{"partition":"r0","generation":1,"range":{"lo":"","hi":"G"},"routed":false}', '{"partition":"r1","generation":1,"range":{"lo":"G","hi":null}}'));
  assert.equal(r.status, 200);
  assert.deepEqual(h.take(), ['serve r0 g1 none ["",G)', 'serve r1 g1 none ["G",+inf)']);
}));

test('a ping is answered while a serve hook runs', () => withWorker({}, async ({ h, addr }) => {
  let release;
  h.block = new Promise((r) => { release = r; });
  let answered = false;
  const pending = post(addr, '/shardz/v1/assign', assign(7, '', rep('p1', 1, 'none'))).then((r) => { answered = true; return r; });
  await h.waitCalls(1);
  assert.deepEqual(h.calls, ['blocked:p1']);
  const p = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":7}');
  assert.equal(p.status, 200);
  assert.equal(p.body.applied_revision, 0);
  assert.equal(answered, false, 'the assignment was answered before its hook returned');
  release();
  assert.equal((await pending).status, 200);
  const p2 = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":7}');
  assert.equal(p2.body.applied_revision, 7);
}));

test('bad messages get 4xx with a JSON code and change nothing', () => withWorker({}, async ({ h, w, addr }) => {
  await post(addr, '/shardz/v1/assign', assign(3, '', rep('p1', 1, 'none')));
  h.take();
  const A = '/shardz/v1/assign';
  const cases = [
    [A, 'not json', 400, 'EINVAL'],
    [A, '[1]', 400, 'EINVAL'],
    [A, '{"namespace":"kv","node":"w2","revision":9,"replicas":[]}', 400, 'EPROTO'],
    [A, '{"namespace":"kv","node":"w1","revision":-1,"replicas":[]}', 400, 'EINVAL'],
    [A, '{"namespace":"kv","node":"w1","revision":9.5,"replicas":[]}', 400, 'EINVAL'],
    [A, '{"namespace":"kv","node":"w1","revision":9}', 400, 'EINVAL'],
    [A, assign(9, '', '{"partition":"a b","generation":1}'), 400, 'EINVAL'],
    [A, assign(9, '', '{"partition":"p9","generation":"1"}'), 400, 'EINVAL'],
    [A, assign(9, '', '{"partition":"p9","generation":1,"slot":256}'), 400, 'EINVAL'],
    [A, assign(9, '', rep('p9', 1, 'none'), rep('p9', 2, 'none')), 400, 'EPROTO'],
    [A, assign(9, ',"released":true', rep('p9', 1, 'none')), 400, 'EPROTO'],
    [A, assign(9, ',"removed":["p1"]'), 400, 'EPROTO'],
    [A, assign(9, ',"base_revision":9'), 400, 'EINVAL'],
    [A, assign(9, ',"base_revision":3,"removed":["p9"]', rep('p9', 1, 'none')), 400, 'EPROTO'],
    [A, assign(9, ',"base_revision":3,"removed":["p1","p1"]'), 400, 'EPROTO'],
    [A, assign(9, ',"lease_ms":0'), 400, 'EINVAL'],
    [A, '{"namespace":"kv","node":"w1","revision":9,"revision":10,"replicas":[]}', 400, 'EINVAL'],
    ['/shardz/v1/ping', '{"namespace":"kv","node":"w1"}', 400, 'EINVAL'],
    ['/shardz/v1/ping', '{"namespace":"other","node":"w1","revision":1}', 400, 'EPROTO'],
    ['/shardz/v1/nope', '{}', 404, 'ENOENT'],
    [A, ' '.repeat((1 << 20) + 1), 413, 'ETOOBIG'],
  ];
  for (const [path, body, status, code] of cases) {
    const r = await post(addr, path, body);
    assert.equal(r.status, status, `${path} ${body.slice(0, 80)}`);
    assert.equal(r.body.code, code, `${path} ${body.slice(0, 80)}`);
    assert.ok(r.body.message);
  }
  assert.deepEqual(h.take(), []);
  assert.equal(w.status().appliedRevision, 3n);
  assert.equal(w.status().serving, 1);
  assert.equal((await post(addr, A, assign(10, '', rep('p1', 1, 'none')))).status, 200);
}));

test('a resync_from assignment unwedges a worker after a forged one', () => withWorker({}, async ({ h, addr }) => {
  await post(addr, '/shardz/v1/assign', assign(10, '', rep('p1', 1, 'none')));
  h.take();
  let r = await post(addr, '/shardz/v1/assign', assign(1000000, ''));
  assert.equal(r.body.applied_revision, 1000000);
  assert.deepEqual(h.take(), ['delete p1 assign']);
  r = await post(addr, '/shardz/v1/assign', assign(11, '', rep('p1', 2, 'none')));
  assert.deepEqual(h.take(), [], 'an older assignment is stale (the wedge)');
  r = await post(addr, '/shardz/v1/assign', assign(11, ',"resync_from":5', rep('p1', 2, 'none')));
  assert.deepEqual(h.take(), [], 'a resync from another revision is stale');
  r = await post(addr, '/shardz/v1/assign', assign(11, ',"resync_from":1000000,"base_revision":10'));
  assert.equal(r.status, 400);
  r = await post(addr, '/shardz/v1/assign', assign(11, ',"resync_from":1000000', rep('p1', 2, 'none')));
  assert.equal(r.body.applied_revision, 11);
  assert.deepEqual(h.take(), ['serve p1 g2 none']);
  r = await post(addr, '/shardz/v1/assign', assign(12, ''));
  assert.equal(r.body.applied_revision, 12);
}));

test('strict: a resync_from assignment after a lapse and a forged one grants its lease', async () => {
  // issue 16: older than the forged revision, it granted nothing, was refused as ungranted,
  // and the worker stayed wedged
  const clock = new FakeClock();
  await withWorker({ coord: { consistency: 'strict' }, worker: { now: clock.now, leaseCheckMs: 3600000 } }, async ({ h, w, addr }) => {
    await post(addr, '/shardz/v1/assign', assign(10, ',"lease_ms":1000', rep('p1', 1, 'none')));
    clock.add(1600); // past the lease
    const p = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":10,"lease_ms":1000}');
    assert.equal(p.body.applied_revision, 0);
    let r = await post(addr, '/shardz/v1/assign', assign(1000000, ''));
    assert.equal(r.body.applied_revision, 1000000, 'the forgery took (positive control)');
    h.take();
    r = await post(addr, '/shardz/v1/assign', assign(11, ',"resync_from":1000000,"lease_ms":1000', rep('p1', 2, 'none')));
    assert.equal(r.body.applied_revision, 11);
    assert.deepEqual(h.take(), ['serve p1 g2 none']);
    assert.ok(w.leaseOk());
  });
});

test('reachable beyond loopback without a secret warns loudly', () => {
  const warned = (cfg) => {
    const lines = [];
    new Worker({ coordinators: ['127.0.0.1:1'], namespace: 'kv', nodeId: 'w1', serve() {}, delete() {},
      log: (level, msg) => { if (level === 'warn' && msg.includes('without a secret')) lines.push(msg); }, ...cfg });
    return lines;
  };
  assert.deepEqual(warned({ listen: '127.0.0.1:0' }), []);
  assert.deepEqual(warned({ listen: '[::1]:0' }), []);
  const l = warned({ listen: '0.0.0.0:0', address: '192.0.2.7:9000' });
  assert.equal(l.length, 1);
  assert.match(l[0], /INSECURE.*0\.0\.0\.0:0/);
  assert.equal(warned({ address: '192.0.2.7:9000' }).length, 1);
  assert.deepEqual(warned({ listen: '0.0.0.0:0', address: '192.0.2.7:9000', secret: 's' }), []);
});

test('the secret is required', () => withWorker({ worker: { secret: 's3' } }, async ({ addr }) => {
  const ping = '{"namespace":"kv","node":"w1","revision":1}';
  const r = await post(addr, '/shardz/v1/ping', ping);
  assert.equal(r.status, 401);
  assert.equal(r.body.code, 'EPROTO');
  assert.equal((await post(addr, '/shardz/v1/ping', ping, { Authorization: 'Bearer s3' })).status, 200);
}));

test('the strict lease: noticed by leaseOk and by the next message', async () => {
  const clock = new FakeClock();
  await withWorker({ coord: { consistency: 'strict' }, worker: { now: clock.now, leaseCheckMs: 3600000, leaseMarginMs: 110 } }, async ({ h, w, addr }) => {
    await post(addr, '/shardz/v1/assign', assign(20, ',"lease_ms":1000', rep('p1', 3, 'none'), rep('p2', 1, 'none')));
    h.take();
    assert.ok(w.leaseOk());
    assert.ok(w.status().leaseEnforced);
    clock.add(889);
    assert.ok(w.leaseOk(), 'lapsed early');
    clock.add(1);
    assert.ok(!w.leaseOk(), 'leaseOk after the lease ran out');
    const p = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":20,"lease_ms":1000}');
    assert.equal(p.body.applied_revision, 0);
    await h.waitCalls(2);
    assert.deepEqual(h.take(), ['delete p1 lease', 'delete p2 lease']);
    let r = await post(addr, '/shardz/v1/assign', assign(21, ',"lease_ms":1000,"base_revision":20', rep('p3', 1, 'none')));
    assert.equal(r.status, 409);
    assert.equal(r.body.applied_revision, 0);
    r = await post(addr, '/shardz/v1/assign', assign(22, ',"lease_ms":1000', rep('p1', 4, 'none')));
    assert.equal(r.status, 200);
    assert.deepEqual(h.take(), ['serve p1 g4 none']);
    assert.ok(w.leaseOk());
    assert.equal(w.status().leaseExpiries, 1);
  });
});

test('the strict lease: the timer drops everything; a ping without lease_ms does not renew', async () => {
  const clock = new FakeClock();
  await withWorker({ coord: { consistency: 'strict' }, worker: { now: clock.now, leaseCheckMs: 5 } }, async ({ h, w, addr }) => {
    await post(addr, '/shardz/v1/assign', assign(20, ',"lease_ms":1000', rep('p1', 3, 'none')));
    h.take();
    clock.add(800);
    await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":20}');
    clock.add(90); // 1000 - (2*5 + 100) = 890 ms since the assignment
    await h.waitCalls(1);
    assert.deepEqual(h.take(), ['delete p1 lease']);
    await w.waitFor(() => w.status().serving === 0, 5000, 'the drop to finish');
    assert.ok(!w.leaseOk(), 'leaseOk after the drop, before any lease-granting message');
  });
});

test('stamps: a grant runs from its lease_stamp; a late one renews nothing and is not applied', async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const ping = (stamp) => post(addr0.addr, '/shardz/v1/ping', `{"namespace":"kv","node":"w1","revision":5,"lease_ms":1000,"lease_stamp":${stamp}}`);
  const addr0 = {};
  await withWorker({ coord: { consistency: 'strict' }, worker: { now: clock.now, leaseCheckMs: 3600000, leaseMarginMs: 150 } }, async ({ h, w, addr }) => {
    addr0.addr = addr;
    let p = await ping(t0 - 900); // late: grants nothing
    assert.equal(p.body.stamp, Math.floor(t0));
    let r = await post(addr, '/shardz/v1/assign', assign(5, `,"lease_ms":1000,"lease_stamp":${t0 - 900}`, rep('p1', 3, 'none')));
    assert.equal(r.body.applied_revision, 0, 'a late assignment was applied');
    assert.deepEqual(h.take(), []);
    r = await post(addr, '/shardz/v1/assign', assign(5, `,"lease_ms":1000,"lease_stamp":${t0 - 100}`, rep('p1', 3, 'none')));
    assert.equal(r.body.applied_revision, 5);
    assert.deepEqual(h.take(), ['serve p1 g3 none']);
    await ping(t0 - 500); // older: does not shorten it
    clock.add(740); // the grant of t0 - 100 lasts until t0 + 750
    assert.ok(w.leaseOk(), 'an older stamp shortened the lease');
    clock.add(10); // from its receipt it would last until t0 + 850
    assert.ok(!w.leaseOk(), 'the lease ran from the receipt, not the stamp');
    await ping(t0 - 100);
    assert.ok(!w.leaseOk(), 'a grant that ran out restored the lease');
    await h.waitCalls(1);
    assert.deepEqual(h.take(), ['delete p1 lease']);
    p = await ping(t0 + 700);
    assert.equal(p.body.stamp, Math.floor(t0 + 750));
    assert.ok(w.leaseOk());
  });
});

test('terms: a deposed coordinator\'s messages are refused and renew nothing', async () => {
  const clock = new FakeClock();
  await withWorker({ coord: { consistency: 'strict' }, worker: { now: clock.now, leaseCheckMs: 3600000, leaseMarginMs: 150 } }, async ({ h, w, addr }) => {
    let r = await post(addr, '/shardz/v1/assign', assign(5, ',"lease_ms":1000,"term":7', rep('p1', 3, 'none')));
    assert.equal(r.body.applied_revision, 5);
    h.take();
    r = await post(addr, '/shardz/v1/assign', assign(9, ',"lease_ms":1000,"term":6', rep('p2', 1, 'none')));
    assert.equal(r.status, 409);
    assert.equal(r.body.code, 'ESTALE');
    assert.equal(r.body.term, 7);
    clock.add(800);
    r = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":9,"lease_ms":1000,"term":6}');
    assert.equal(r.status, 409);
    clock.add(60); // 860 ms after the last grant: it renewed nothing
    assert.ok(!w.leaseOk(), "a deposed leader's ping renewed the lease");
    assert.deepEqual(h.take(), []);
    r = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":9,"lease_ms":1000,"term":7}');
    assert.equal(r.status, 200);
    r = await post(addr, '/shardz/v1/assign', assign(10, ',"lease_ms":1000', rep('p2', 1, 'none')));
    assert.equal(r.body.applied_revision, 10, 'a message without a term is taken');
  });
});

test('load reports and split hints ride on the next ping only', () => withWorker({}, async ({ w, addr }) => {
  await post(addr, '/shardz/v1/assign', assign(3, '', rep('p1', 1, 'none')));
  w.reportLoad('p1', 'cpu', 1.5);
  assert.throws(() => w.reportLoad('p9', 'cpu', 1));
  assert.throws(() => w.reportLoad('p1', 'cpu', -1));
  w.reportSplitKey('p1', 'user:5');
  let p = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":3}');
  assert.deepEqual(noStamp(p.body), { node: 'w1', applied_revision: 3, load: { p1: { cpu: 1.5 } }, split_at: { p1: 'user:5' } });
  p = await post(addr, '/shardz/v1/ping', '{"namespace":"kv","node":"w1","revision":3}');
  assert.deepEqual(noStamp(p.body), { node: 'w1', applied_revision: 3 });
}));

test('leave resolves only once released', () => withWorker({}, async ({ f, h, w, addr }) => {
  await post(addr, '/shardz/v1/assign', assign(3, '', rep('p1', 1, 'none')));
  h.take();
  let left = false;
  const leaving = w.leave(10000).then(() => { left = true; });
  const deadline = Date.now() + 5000;
  while (f.leaves === 0) {
    assert.ok(Date.now() < deadline, 'no leave sent');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(left, false, 'leave resolved before the release');
  const r = await post(addr, '/shardz/v1/assign', '{"namespace":"kv","node":"w1","revision":4,"released":true,"replicas":[]}');
  assert.equal(r.status, 200);
  await leaving;
  assert.deepEqual(h.take(), ['delete p1 assign']);
}));

test('a leave the coordinator does not know drops everything', () => withWorker({ coord: { leaveStatus: 404 } }, async ({ h, w, addr }) => {
  await post(addr, '/shardz/v1/assign', assign(3, '', rep('p1', 1, 'none')));
  h.take();
  await w.leave(5000);
  assert.deepEqual(h.take(), ['delete p1 release']);
}));

test('several coordinators: a refused connection moves on to the next', async () => {
  const f = await fakeCoordinator();
  const dead = http.createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const deadAddr = `127.0.0.1:${dead.address().port}`;
  await new Promise((r) => dead.close(r));
  const h = new HookLog();
  const w = await startWorker({ addr: `${deadAddr},${f.addr}` }, h);
  assert.equal(w.status().registrations, 1);
  await w.stop();
  await f.close();
});

test('a handler mounted in the application server', async () => {
  const f = await fakeCoordinator();
  const h = new HookLog();
  let w;
  const app = http.createServer((req, res) => {
    if (req.url.startsWith('/shardz/')) w.handler(req, res);
    else res.end('app');
  });
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
  const addr = `127.0.0.1:${app.address().port}`;
  w = new Worker({ coordinators: f.addr, namespace: 'kv', nodeId: 'w1', address: addr, serve: h.serve, delete: h.delete, log: () => {} });
  await w.start();
  await w.waitRegistered(5000);
  assert.equal((await post(addr, '/shardz/v1/assign', assign(2, '', rep('p1', 1, 'none')))).status, 200);
  assert.deepEqual(h.take(), ['serve p1 g1 none']);
  await w.stop();
  await new Promise((r) => { app.close(r); app.closeAllConnections?.(); });
  await f.close();
});

test('state transfer: not ready until ready(), then reported until taken', async () => {
  const f = await fakeCoordinator({ features: '["delta","transfer"]' });
  let w = null;
  let from = null;
  const h = new HookLog();
  const serve = (r) => {
    from = r.from;
    if (r.from) w.notReady(r.partition);
  };
  w = await startWorker(f, h, { serve });
  try {
    const adding = '{"partition":"p1","slot":0,"role":"none","generation":7,"state":"adding","from":{"node":"w0","address":"127.0.0.1:9100"}}';
    let r = await post(w.address, '/shardz/v1/assign', assign(3, '', adding));
    assert.deepEqual(from, { node: 'w0', address: '127.0.0.1:9100' });
    assert.equal(r.status, 200);
    assert.equal(r.body.serving[0].ready, false);
    const ping = '{"namespace":"kv","node":"w1","revision":3}';
    assert.equal((await post(w.address, '/shardz/v1/ping', ping)).body.ready, undefined);
    assert.throws(() => w.ready('p1', 6n));
    assert.throws(() => w.notReady('p1')); // only from its serve hook
    w.ready('p1', 7n);
    for (let i = 0; i < 2; i++) { // repeated until taken
      const p = await post(w.address, '/shardz/v1/ping', ping);
      assert.equal(p.body.ready.length, 1);
      assert.equal(p.body.ready[0].partition, 'p1');
      assert.equal(String(p.body.ready[0].generation), '7');
    }
    r = await post(w.address, '/shardz/v1/assign', assign(4, '', rep('p1', 7, 'none')));
    assert.equal(r.body.serving[0].ready, undefined);
    assert.equal((await post(w.address, '/shardz/v1/ping', ping)).body.ready, undefined);
    const bad = '{"partition":"p2","generation":1,"state":"adding","from":{"node":"w 0","address":"x"}}';
    assert.equal((await post(w.address, '/shardz/v1/assign', assign(5, '', bad))).status, 400);
  } finally {
    await w.stop();
    await f.close();
  }
});
