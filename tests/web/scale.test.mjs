// The dashboard at scale: 1,000 nodes and 100,000 partitions (2 replicas each). No daemon
// here: a small local server serves web/ from the source tree and answers the API routes the
// page reads with a synthetic namespace of that size (the shapes of docs/PROTOCOL.md), so the
// check is about the page: it loads in reasonable time, keeps the DOM small (a canvas heat map,
// tables capped), the heat map stays readable (cells of a few pixels at least, hover details),
// and the filter and color modes work. Screenshot: $SHARDZ_WEB_OUT/dashboard-scale.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(HERE, '..', '..', 'web');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.SHARDZ_WEB_OUT || fs.mkdtempSync(path.join(os.tmpdir(), 'shardz-web-out-'));
const NODES = 1000;
const PARTS = 100000;
const REV = '42949672960123'; // past 2^32, as after a restart: sent as text, compared exactly

function synthetic() {
  const zones = ['a', 'b', 'c', 'd'];
  const nodes = [];
  for (let i = 0; i < NODES; i++) {
    const state = i % 97 === 5 ? 'dead' : i % 131 === 7 ? 'draining' : i % 211 === 3 ? 'suspect' : i >= NODES - 3 ? 'joining' : 'alive';
    nodes.push({ id: 'node-' + String(i).padStart(4, '0'), address: '10.0.' + (i >> 8) + '.' + (i & 255) + ':9100', zone: zones[i % 4], state });
  }
  const holders = nodes.filter((n) => n.state === 'alive' || n.state === 'suspect' || n.state === 'draining');
  // Skewed: a band of nodes gets about twice its share, so the map has something to show.
  const weights = holders.map((n, i) => (i % 50 < 5 ? 2 : i % 50 < 10 ? 0.5 : 1));
  const cum = [];
  weights.reduce((a, w, i) => (cum[i] = a + w), 0);
  const total = cum[cum.length - 1];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const pick = () => {
    const x = rnd() * total;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return holders[lo];
  };
  const parts = [];
  const moves = [];
  const replicas = new Map(nodes.map((n) => [n.id, 0]));
  for (let p = 0; p < PARTS; p++) {
    const a = pick();
    let b = pick();
    while (b === a) b = pick();
    const reps = [
      { node: a.id, address: a.address, slot: 0, role: 'none', state: 'serving', generation: 3 },
      { node: b.id, address: b.address, slot: 1, role: 'none', state: 'serving', generation: 3 },
    ];
    if (p % 400 === 0) {
      const to = holders[(p * 7) % holders.length];
      if (to !== a && to !== b) {
        reps[1].moving_to = to.id;
        moves.push({ partition: String(p), slot: 1, from: b.id, to: to.id, from_state: 'serving', to_state: 'adding', reason: p % 800 ? 'drain' : 'rebalance', generation: 4, age_ms: 1200 });
      }
    }
    for (const r of reps) replicas.set(r.node, replicas.get(r.node) + 1);
    parts.push({ id: String(p), generation: 3, replicas: reps });
  }
  const nodeDetails = nodes.map((n, i) => ({
    ...n, capacity: { cpu: 400, mem: 1024 }, replicas: replicas.get(n.id),
    load: { cpu: replicas.get(n.id) * (1 + (i % 7) / 10), mem: (i * 37) % 1024 }, leaving: false, drained: n.state === 'draining',
  }));
  const events = [];
  for (let s = 1; s <= 600; s++) {
    const m = moves[s % moves.length];
    events.push(s % 2 ? { seq: s, time_ms: Date.now() - (600 - s) * 100, type: 'move', partition: m.partition, slot: m.slot, from: m.from, to: m.to, reason: m.reason, generation: 4 }
      : { seq: s, time_ms: Date.now() - (600 - s) * 100, type: 'node-state', node: nodes[s % NODES].id, from: 'alive', to: 'suspect' });
  }
  return {
    state: JSON.stringify({ namespace: 'big', revision: 0, sharder: 'replica', nodes, partitions: parts }).replace('"revision":0', '"revision":' + REV),
    nodes: JSON.stringify({ nodes: nodeDetails, revision: 0 }),
    moves: JSON.stringify({ moves, revision: 0 }),
    events: JSON.stringify({ events, next: 600, first: 1 }),
    summary: JSON.stringify({
      name: 'big', sharder: 'replica', replicas: 2, consistency: 'available', dimensions: ['cpu', 'mem'], revision: 0,
      nodes: { alive: 0 }, partitions: PARTS, missing: 0, moves: moves.length,
    }),
  };
}

test('the dashboard stays usable at 1,000 nodes and 100,000 partitions', { timeout: 90000 }, async (t) => {
  fs.mkdirSync(OUT, { recursive: true });
  const data = synthetic();
  t.diagnostic(`synthetic state: ${(data.state.length / 1e6).toFixed(1)} MB of JSON`);
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
  const watches = [];
  const watchRevs = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const json = (body) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Shardz-Revision': REV });
      res.end(body);
    };
    const p = u.pathname;
    if (p === '/v1/status') return json(JSON.stringify({ version: 'synthetic', role: 'leader', store: 'sqlite', fsync: 'full', store_revision: 10, uptime_ms: 1000 }));
    if (p === '/v1/namespaces') return json(JSON.stringify({ namespaces: [{ name: 'big' }] }));
    if (p === '/v1/namespaces/big') return json(data.summary);
    if (p === '/v1/namespaces/big/state') return json(data.state);
    if (p === '/v1/namespaces/big/nodes') return json(data.nodes);
    if (p === '/v1/namespaces/big/moves') return json(data.moves);
    if (p === '/v1/namespaces/big/events') return json(u.searchParams.get('since') ? JSON.stringify({ events: [], next: 600, first: 1 }) : data.events);
    if (p === '/v1/namespaces/big/watch') { // nothing changes: hold it like the daemon would
      watchRevs.push(u.searchParams.get('revision'));
      const timer = setTimeout(() => json(JSON.stringify({ revision: 0, unchanged: true })), Number(u.searchParams.get('timeout_ms')) || 30000);
      watches.push(timer);
      req.on('close', () => clearTimeout(timer));
      return undefined;
    }
    if (p.startsWith('/v1/')) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ code: 'ENOENT', message: 'no such route' }));
    }
    const f = path.join(WEB, p === '/' ? 'index.html' : path.normalize(p).replace(/^\/+/, ''));
    if (!f.startsWith(WEB) || !fs.existsSync(f)) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'Content-Type': types[path.extname(f)] || 'application/octet-stream' });
    return res.end(fs.readFileSync(f));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  t.after(async () => {
    for (const w of watches) clearTimeout(w);
    await browser.close().catch(() => {});
    server.closeAllConnections();
    server.close();
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const t0 = Date.now();
  await page.goto(url);
  await page.locator('#nodes-count', { hasText: 'of 1000 matching nodes' }).waitFor({ timeout: 30000 });
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 30000 });
  const loadMs = Date.now() - t0;
  t.diagnostic(`loaded and rendered in ${loadMs} ms`);
  assert.ok(loadMs < 20000, 'loads in under 20 s on this machine (took ' + loadMs + ' ms)');

  assert.equal(await page.locator('#summary [data-key="revision"] .value').textContent(), REV, 'the 64-bit revision is exact');
  assert.deepEqual([...new Set(watchRevs)], [REV], 'the watch asks from the exact 64-bit revision');
  assert.equal(await page.locator('#nodes-table tbody tr').count(), 200, 'the node table is capped');
  assert.ok(await page.locator('#moves-table tbody tr').count() <= 200, 'the moves table is capped');
  const dom = await page.evaluate(() => document.getElementsByTagName('*').length);
  t.diagnostic(`DOM elements: ${dom}`);
  assert.ok(dom < 15000, 'no DOM element per partition or per node (' + dom + ' elements)');

  const heat = await page.evaluate(() => {
    const c = document.getElementById('heatmap');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colors = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) if (d[i + 3]) colors.add((d[i] >> 4) * 256 + (d[i + 1] >> 4) * 16 + (d[i + 2] >> 4));
    return { w: c.clientWidth, h: c.clientHeight, colors: colors.size };
  });
  t.diagnostic(`heat map ${heat.w}x${heat.h} px, ${heat.colors} distinct colors`);
  assert.ok(heat.h >= 150 && heat.h <= 700, 'the heat map keeps a readable height (' + heat.h + ' px)');
  assert.ok(heat.colors >= 4, 'the skew shows in colors');

  // Hover over a cell tells which node and how loaded.
  const box = await page.locator('#heatmap').boundingBox();
  await page.mouse.move(box.x + 3, box.y + 22);
  const tip = page.locator('#heat-tip');
  await tip.waitFor({ state: 'visible' });
  assert.match(await tip.textContent(), /node-\d{4}.*replicas.*× mean.*cpu: [\d.]+ \/ 400/s);
  await page.mouse.move(box.x + 3, box.y + box.height - 12);
  assert.match(await tip.textContent(), /node-\d{4}/);

  // Filter narrows the table and dims the rest of the map; color by load works.
  await page.fill('#node-filter', 'draining');
  await page.locator('#nodes-count', { hasText: /^\d+ of 1000 nodes$/ }).waitFor();
  const draining = await page.locator('#nodes-table tbody tr[data-state="draining"]').count();
  assert.ok(draining > 0 && draining === (await page.locator('#nodes-table tbody tr').count()));
  await page.fill('#node-filter', '');
  await page.selectOption('#heat-mode', 'load:cpu');
  await page.locator('#heat-legend .ramp.load').waitFor();
  await page.selectOption('#heat-mode', 'replicas');
  await page.mouse.move(box.x + 300, box.y + 40);
  await page.screenshot({ path: path.join(OUT, 'dashboard-scale.png') });
  t.diagnostic('screenshot: ' + path.join(OUT, 'dashboard-scale.png'));
  assert.deepEqual(errors, []);
});
