// The router (docs/PROTOCOL.md section 7): a local snapshot of a namespace's /state, kept fresh
// by long-polling /watch, and lookups by partition and by key. Each state becomes an immutable
// Snapshot; installing one is a single reference assignment on the event loop, so a lookup never
// waits for an update (there is no lock to take). The watch loop runs on the event loop.
import { Coordinators } from './coord.js';
import { ShardzError } from './errors.js';
import { parseJSON } from './json.js';
import { keySlot } from './hash.js';
import { validNamespace } from './proto.js';

const sleep = (ms, signal) => new Promise((resolve) => {
  if (signal?.aborted) return resolve();
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

const num = (v) => (typeof v === 'bigint' ? Number(v) : v);

/** One immutable state of a namespace. */
export class Snapshot {
  /** Builds a snapshot from a /state object (already parsed, integers as BigInt) or text.
   * sharder / slots are used when the state does not say them. Throws on a malformed state. */
  constructor(state, { sharder = '', slots = 0 } = {}) {
    const s = typeof state === 'string' ? parseJSON(state) : state;
    if (!s || typeof s !== 'object' || typeof s.revision !== 'bigint') throw new TypeError('shardz: state: no revision');
    this.namespace = s.namespace ?? '';
    this.revision = s.revision;
    this.sharder = s.sharder || sharder;
    this.slots = num(s.slots) || slots || 0;
    const nodes = new Map((s.nodes ?? []).map((n) => [n.id, n]));
    const routes = [];
    const byId = new Map();
    for (const p of s.partitions ?? []) {
      if (typeof p.id !== 'string' || p.id === '' || byId.has(p.id)) throw new TypeError(`shardz: state: partition '${p.id}' twice or empty`);
      const generation = typeof p.generation === 'bigint' ? p.generation : 0n;
      const replicas = (p.replicas ?? []).map((x) => {
        const n = nodes.get(x.node);
        return Object.freeze({
          node: x.node, address: x.address || n?.address || '', nodeState: n?.state ?? '',
          slot: num(x.slot) ?? 0, role: x.role ?? 'none', state: x.state ?? 'serving',
          generation: typeof x.generation === 'bigint' ? x.generation : generation,
        });
      }).sort((a, b) => a.slot - b.slot);
      let target = -1;
      replicas.forEach((x, i) => {
        if (x.state === 'serving' && (target < 0 || (x.role === 'primary' && replicas[target].role !== 'primary'))) target = i;
      });
      const route = {
        partition: p.id, generation, replicas: Object.freeze(replicas), target,
        range: p.range ? Object.freeze({ lo: p.range.lo ?? '', hi: p.range.hi ?? null }) : null,
        routed: p.routed !== false, slotRuns: p.slots ?? [],
      };
      byId.set(p.id, route);
      routes.push(route);
    }
    routes.sort((a, b) => (a.partition < b.partition ? -1 : 1));
    this.routes = routes;
    this.byId = byId;
    if (this.sharder === 'hash') this.buildSlots();
    else if (this.sharder === 'range') this.buildRanges();
    for (const r of routes) {
      delete r.slotRuns;
      Object.freeze(r);
    }
    Object.freeze(this);
  }

  buildSlots() {
    let slots = this.slots;
    if (!slots) for (const r of this.routes) for (const run of r.slotRuns) slots = Math.max(slots, num(run[1]));
    if (!slots || (slots & (slots - 1)) !== 0 || slots > 1 << 20) throw new TypeError(`shardz: state: slot space ${slots} is not a power of two up to 2^20`);
    this.slots = slots;
    const table = new Int32Array(slots).fill(-1);
    this.routes.forEach((r, i) => {
      for (const run of r.slotRuns) {
        const lo = num(run[0]);
        const hi = num(run[1]);
        if (!(lo >= 0 && hi <= slots && lo < hi)) throw new TypeError(`shardz: state: partition ${r.partition}: bad slot run [${lo}, ${hi})`);
        for (let x = lo; x < hi; x++) {
          if (table[x] >= 0) throw new TypeError(`shardz: state: slot ${x} held twice`);
          table[x] = i;
        }
      }
    });
    this.slotTable = table;
  }

  buildRanges() {
    const ranges = this.routes.filter((r) => r.range && r.routed);
    ranges.sort((a, b) => (Buffer.compare(Buffer.from(a.range.lo), Buffer.from(b.range.lo))));
    ranges.forEach((r, i) => { // the routed ranges cover the key space exactly once
      if (i === 0 && r.range.lo !== '') throw new TypeError('shardz: state: the routed ranges do not start at -infinity');
      const last = i === ranges.length - 1;
      if (last !== (r.range.hi === null)) throw new TypeError('shardz: state: the routed ranges do not end at +infinity once');
      if (!last && r.range.hi !== ranges[i + 1].range.lo) throw new TypeError(`shardz: state: range ${r.partition} does not meet the next`);
    });
    this.ranges = ranges;
    this.rangeLos = ranges.map((r) => Buffer.from(r.range.lo));
  }

  /** Every partition's route, in id order. */
  partitions() {
    return this.routes;
  }

  /** The route of a partition id, or null. */
  lookupPartition(id) {
    return this.byId.get(id) ?? null;
  }

  /** {route, slot} of key (route null when no partition holds it): by the key's hash-tag slot
   * in a hash namespace (slot: the key's slot), by the routed range holding it in a range
   * namespace (slot: the range's index in key order). Throws in other namespaces. */
  lookupKey(key) {
    if (this.sharder === 'hash') {
      const slot = keySlot(key, this.slots);
      const i = this.slotTable[slot];
      return { route: i >= 0 ? this.routes[i] : null, slot };
    }
    if (this.sharder === 'range') {
      const k = Buffer.from(key); // keys order bytewise
      let lo = 0;
      let hi = this.rangeLos.length;
      while (lo < hi) { // the first range whose lo > key
        const mid = (lo + hi) >>> 1;
        if (Buffer.compare(this.rangeLos[mid], k) > 0) hi = mid;
        else lo = mid + 1;
      }
      return lo === 0 ? { route: null, slot: 0 } : { route: this.ranges[lo - 1], slot: lo - 1 };
    }
    throw new TypeError('shardz: key lookups need a hash or range namespace');
  }
}

/** Keeps a namespace's snapshot fresh. */
export class Router {
  /** cfg: {coordinators, namespace, secret, watchTimeoutMs = 30000, requestTimeoutMs = 5000, log} */
  constructor(cfg) {
    const c = { watchTimeoutMs: 30000, requestTimeoutMs: 5000, ...cfg };
    if (!validNamespace(c.namespace)) throw new TypeError(`shardz: bad namespace '${c.namespace}'`);
    this.cfg = c;
    this.coords = new Coordinators(c.coordinators, { secret: c.secret, timeoutMs: c.requestTimeoutMs });
    this.log = c.log ?? ((level, msg) => console.error(`shardz ${level}: ${msg}`));
    this.snap = null;
    this.sharder = '';
    this.slots = 0;
    this.waiters = new Set();
    this.abort = new AbortController();
    this.loop = null;
  }

  /** Starts the watch loop; resolves once the first state is installed (rejects after
   * timeoutMs, the loop keeps trying). */
  start(timeoutMs = 20000) {
    this.loop ??= this.watchLoop();
    return this.waitRevision(0n, timeoutMs);
  }

  /** The current snapshot, or null before the first state. */
  snapshot() {
    return this.snap;
  }

  /** The current revision (BigInt; -1n before the first state). */
  get revision() {
    return this.snap ? this.snap.revision : -1n;
  }

  lookupKey(key) {
    if (!this.snap) throw new Error('shardz: no state loaded yet');
    return this.snap.lookupKey(key);
  }

  lookupPartition(id) {
    if (!this.snap) throw new Error('shardz: no state loaded yet');
    return this.snap.lookupPartition(id);
  }

  /** Resolves once a snapshot of revision >= rev (BigInt or number) is installed. */
  waitRevision(rev, timeoutMs = -1) {
    const want = BigInt(rev);
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        if (this.snap && this.snap.revision >= want) {
          this.waiters.delete(check);
          if (timer) clearTimeout(timer);
          resolve();
        }
      };
      this.waiters.add(check);
      if (timeoutMs >= 0) {
        timer = setTimeout(() => {
          this.waiters.delete(check);
          reject(Object.assign(new Error(`shardz: revision ${want} not reached`), { code: 'ETIMEDOUT' }));
        }, timeoutMs);
      }
      check();
    });
  }

  /** Replaces the snapshot with one built elsewhere (tests, tools). */
  install(snap) {
    this.snap = snap;
    for (const w of [...this.waiters]) w();
  }

  nsPath() {
    return `/v1/namespaces/${encodeURIComponent(this.cfg.namespace)}`;
  }

  async get(coordsPath, timeoutMs) {
    const r = await this.coords.request('GET', coordsPath, null, { signal: this.abort.signal, timeoutMs });
    if (r.status !== 200) throw ShardzError.fromReply(r.status, r.body);
    return parseJSON(r.body);
  }

  async loadState() {
    if (!this.sharder) {
      const ns = await this.get(this.nsPath());
      this.sharder = ns.sharder || ns.config?.sharder || '';
      this.slots = num(ns.slots ?? ns.config?.slots) || 0;
    }
    // a full state is installed whatever its revision (it may come from another coordinator)
    this.install(new Snapshot(await this.get(`${this.nsPath()}/state`), { sharder: this.sharder, slots: this.slots }));
  }

  async watchOnce() {
    const t = this.cfg.watchTimeoutMs;
    const body = await this.get(`${this.nsPath()}/watch?revision=${this.snap.revision}&timeout_ms=${t}`, t + this.cfg.requestTimeoutMs);
    if (body.unchanged === true) return;
    this.install(new Snapshot(body, { sharder: this.sharder, slots: this.slots }));
  }

  async watchLoop() {
    const signal = this.abort.signal;
    let backoff = 50;
    let fresh = false; // the next step may watch instead of reading the whole state
    while (!signal.aborted) {
      try {
        if (fresh) await this.watchOnce();
        else await this.loadState();
        fresh = true;
        backoff = 50;
      } catch (err) {
        if (signal.aborted) return;
        this.log('warn', `router ${this.cfg.namespace}: ${err.message} (retrying)`);
        fresh = false;
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /** Stops the watch loop. */
  async stop() {
    this.abort.abort();
    await this.loop;
    this.coords.close();
  }
}
