// The worker (docs/PROTOCOL.md section 4): registers with the coordinator, answers pings, diffs
// assignments into the application's serve / delete hooks, keeps the strict-mode lease and
// leaves gracefully. Everything runs on Node's event loop:
//   - the HTTP handler answers a ping at once (it never waits for a hook: hooks are awaited in
//     the job queue, so while an async hook runs, pings are still served);
//   - the job queue runs assignments, lease lapses and local releases one at a time: the only
//     caller of the hooks (never two at once) and the only writer of the served set;
//   - a timer checks the lease and the re-registration watchdog every leaseCheckMs;
//   - the control loop registers (with backoff), re-registers and leaves.
// A hook that computes synchronously for long blocks the whole loop, pings included: make slow
// hooks async (await I/O, or move CPU work to a worker_threads Worker).
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Coordinators } from './coord.js';
import { ShardzError, ProtoError } from './errors.js';
import { toJSON, parseJSON } from './json.js';
import { MAX_BODY, parseAssign, parsePing, validId, validNamespace } from './proto.js';

export const CAUSE_ASSIGN = 'assign';
export const CAUSE_LEASE = 'lease';
export const CAUSE_RELEASE = 'release';

const sleep = (ms, signal) => new Promise((resolve) => {
  if (signal?.aborted) {
    resolve();
    return;
  }
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

const errBody = (code, message) => toJSON({ code, message });

export class Worker {
  /**
   * @param {object} cfg see index.d.ts (WorkerConfig)
   */
  constructor(cfg) {
    const c = { lease: 'auto', leaseCheckMs: 25, requestTimeoutMs: 5000, backoffMaxMs: 2000, zone: '', ...cfg };
    if (!validNamespace(c.namespace)) throw new TypeError(`shardz: bad namespace '${c.namespace}'`);
    if (!validId(c.nodeId)) throw new TypeError(`shardz: bad node id '${c.nodeId}'`);
    if (typeof c.serve !== 'function' || typeof c.delete !== 'function') throw new TypeError('shardz: serve and delete hooks are required');
    if (!c.listen && !c.address) throw new TypeError('shardz: listen or address is required');
    if (c.zone && !validId(c.zone, 63)) throw new TypeError(`shardz: bad zone '${c.zone}'`);
    for (const d of Object.keys(c.capacity ?? {})) if (!validId(d, 63)) throw new TypeError(`shardz: bad capacity dimension '${d}'`);
    if (!['auto', 'on', 'off'].includes(c.lease)) throw new TypeError("shardz: lease is 'auto', 'on' or 'off'");
    this.cfg = c;
    this.coords = new Coordinators(c.coordinators, { secret: c.secret, timeoutMs: c.requestTimeoutMs });
    this.now = c.now ?? (() => performance.now());
    this.log = c.log ?? ((level, msg) => console.error(`shardz ${level}: ${msg}`));
    this._address = c.address ?? '';
    this.warnUnprotected();
    this.server = null;
    this.started = false;
    this.stopped = false;
    this.registered = false;
    this.wantRegister = false;
    this.leaving = false;
    this.leaveDone = false;
    this.released = false;
    this.pingIntervalMs = 0;
    this.leaseMs = 0;
    this.consistency = -1; // -1 unknown, 0 available, 1 strict
    this.contact = false;
    this.lastContact = 0; // the lease runs from here: the latest grant's lease_stamp, or its receipt
    this.incarnation = randomBytes(16).toString('hex'); // this process (PROTOCOL.md 4.1)
    this.termSeen = 0; // the highest coordinator term seen (PROTOCOL.md 4.2)
    this.lastAlive = 0; // last contact or registration: the watchdog
    this.appliedReported = 0n; // applied_revision of replies; 0 after a lapse or local release
    this.lastRevision = 0n; // highest revision applied: older assignments are stale
    this.deltaAgreed = false;
    this.transferAgreed = false; // the register reply listed "transfer" (state transfer)
    this.counts = { registrations: 0, assignments: 0, deltas: 0, deltasRefused: 0, leaseExpiries: 0 };
    this.lastError = '';
    this.set = new Map(); // partition -> {replica fields, pending, load, splitKey}
    this.jobs = [];
    this.jobsRunning = false;
    this.leaseQueued = false;
    this.leaseLapsed = false;
    this.leaseRevoked = false; // a lapse was noticed and no lease-granting message came since
    this.waiters = new Set(); // functions re-checked on every change
    this.abort = new AbortController();
    this.kickFn = null;
  }

  /** The address registered with the coordinator (host:port). */
  get address() {
    return this._address;
  }

  /** Protected mode's library half (issue 16): a worker reachable beyond loopback without a
   * secret takes assignments from anyone who reaches it (one forged message deletes everything
   * it serves). Not refused, but said loudly, at 'warn'. */
  warnUnprotected() {
    if (this.cfg.secret) return;
    for (const addr of [this.cfg.listen, this.cfg.address]) {
      if (!addr) continue;
      const host = addr.slice(0, addr.lastIndexOf(':')).replace(/^\[|\]$/g, '');
      if (host.startsWith('127.') || host === '::1' || host === 'localhost') continue;
      this.log('warn', `INSECURE: worker ${this.cfg.nodeId} is reachable at ${addr} without a secret: anyone who reaches it can assign or delete its partitions. Give it the coordinator's secret (cfg.secret, from SHARDZ_SECRET or a file)`);
      return;
    }
  }

  /** Binds the listener (when cfg.listen is set) and starts registering in the background. */
  async start() {
    if (this.started) throw new Error('shardz: already started');
    this.started = true;
    if (this.cfg.listen) {
      const m = /^(\[[^\]]+\]|[^:]*):(\d+)$/.exec(this.cfg.listen);
      if (!m) throw new TypeError(`shardz: listen '${this.cfg.listen}' is not host:port`);
      const host = m[1].replace(/^\[|\]$/g, '') || '127.0.0.1';
      this.server = http.createServer((req, res) => this.handler(req, res));
      this.server.keepAliveTimeout = 65000;
      await new Promise((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(Number(m[2]), host, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
      if (!this._address) {
        const a = this.server.address();
        this._address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      }
    }
    this.wantRegister = true;
    this.lastAlive = this.now();
    this.timer = setInterval(() => this.tick(), this.cfg.leaseCheckMs);
    this.timer.unref();
    this.control = this.controlLoop();
  }

  changed() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once cond() holds; rejects after timeoutMs (<0: never) or when stopped. */
  waitFor(cond, timeoutMs = -1, what = 'condition') {
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        if (cond()) {
          done();
          resolve();
        } else if (this.stopped) {
          done();
          reject(new Error('shardz: worker stopped'));
        }
      };
      const done = () => {
        this.waiters.delete(check);
        if (timer) clearTimeout(timer);
      };
      this.waiters.add(check);
      if (timeoutMs >= 0) {
        timer = setTimeout(() => {
          done();
          reject(Object.assign(new Error(`shardz: timed out waiting for ${what}`), { code: 'ETIMEDOUT' }));
        }, timeoutMs);
      }
      check();
    });
  }

  /** Resolves at the first successful registration. */
  waitRegistered(timeoutMs = -1) {
    return this.waitFor(() => this.registered, timeoutMs, 'registration');
  }

  // ---- the lease ------------------------------------------------------------------------------

  /** The effective lease in ms (0: not enforced) of a grant of leaseMs (default: the last). */
  leaseEff(leaseMs = this.leaseMs) {
    const on = this.cfg.lease === 'on' || (this.cfg.lease === 'auto' && this.consistency !== 0);
    if (!on || leaseMs <= 0) return 0;
    const lease = leaseMs;
    const margin = this.cfg.leaseMarginMs ?? 2 * this.cfg.leaseCheckMs + lease / 10;
    return margin < lease / 2 ? lease - margin : lease / 2 + 1;
  }

  leaseExpired(now) {
    const eff = this.leaseEff();
    return eff !== 0 && this.contact && this.set.size > 0 && now - this.lastContact >= eff;
  }

  /** Notices a lapse (timer, or a message arriving after a pause) and queues the drop. */
  checkLapse(now) {
    if (this.leaseLapsed || this.stopped || !this.leaseExpired(now)) return;
    this.leaseLapsed = true;
    this.leaseRevoked = true;
    this.appliedReported = 0n;
    if (!this.leaseQueued) {
      this.leaseQueued = true;
      this.enqueue({ kind: 'lease' });
    }
  }

  /** The 409 refusal of a message of an older term than one seen (a deposed coordinator's),
   * or null; a newer term is remembered. */
  deposed(term) {
    if (term >= 0 && term < this.termSeen) {
      this.log('warn', `refused a message of term ${term}: term ${this.termSeen} seen`);
      return [409, toJSON({ code: 'ESTALE', message: `from term ${term}, but term ${this.termSeen} was seen: a deposed coordinator`, term: this.termSeen })];
    }
    if (term > this.termSeen) this.termSeen = term;
    return null;
  }

  /** This worker's clock as a stamp (PROTOCOL.md 4.1), in the registration and every reply. */
  stamp() {
    return Math.max(0, Math.floor(this.now()));
  }

  /** A message arrived, granting a lease of leaseMs (0: none) from leaseStamp (this worker's
   * clock echoed; -1: from its receipt). Returns until when its own grant lasts (-1: it grants
   * nothing). A grant that ran out before it arrived (a late message) renews nothing, and no
   * grant shortens the lease (PROTOCOL.md section 6). */
  contactFrom(leaseMs, consistency, leaseStamp = -1) {
    const now = this.now();
    this.checkLapse(now); // before renewing: a late message does not undo a lapse
    this.lastAlive = now;
    if (consistency >= 0) this.consistency = consistency;
    if (leaseMs <= 0) return -1; // only a lease-granting message renews it (PROTOCOL.md section 6)
    if (leaseStamp > now) return -1; // from the future: not this clock's (another process's)
    const from = leaseStamp >= 0 ? leaseStamp : now;
    const eff = this.leaseEff(leaseMs);
    if (eff !== 0 && now - from >= eff) return -1; // delivered after its grant ran out
    if (!this.contact || from > this.lastContact) this.lastContact = from;
    this.contact = true;
    this.leaseMs = leaseMs;
    this.leaseRevoked = false;
    return eff !== 0 ? from + eff : Infinity;
  }

  /** Whether the application may act on what it serves now: false once the strict lease has
   * lapsed, also after the replicas were deleted, until a lease-granting message arrives. */
  leaseOk() {
    return !this.leaseLapsed && !this.leaseRevoked && !this.leaseExpired(this.now());
  }

  // ---- the endpoint -----------------------------------------------------------------------------

  secretOk(auth) {
    if (!this.cfg.secret) return true;
    const want = Buffer.from(`Bearer ${this.cfg.secret}`);
    const got = Buffer.from(auth ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /** A node:http request handler for POST /shardz/v1/ping and /shardz/v1/assign; mount it in
   * your own server (for requests under /shardz/) when cfg.listen is not set. */
  handler(req, res) {
    const send = (status, body) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    const path = (req.url ?? '').split('?')[0];
    if (!this.secretOk(req.headers.authorization)) {
      send(401, errBody('EPROTO', 'bad or missing secret'));
      req.resume();
      return;
    }
    const ping = path === '/shardz/v1/ping';
    if (!ping && path !== '/shardz/v1/assign') {
      send(404, errBody('ENOENT', 'no such endpoint (POST /shardz/v1/ping or assign)'));
      req.resume();
      return;
    }
    if (req.method !== 'POST') {
      send(400, errBody('EPROTO', 'only POST is accepted here'));
      req.resume();
      return;
    }
    const chunks = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) {
        send(413, errBody('ETOOBIG', 'body over 1 MiB'));
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      if (ping) {
        const [status, out] = this.handlePing(body);
        send(status, out);
      } else {
        this.handleAssign(body).then(([status, out]) => send(status, out));
      }
    });
  }

  refuse(err, what) {
    if (!(err instanceof ProtoError)) throw err;
    this.log('warn', `rejected ${what}: ${err.message}`);
    return [err.status, errBody(err.code, err.message)];
  }

  handlePing(body) {
    let p;
    try {
      p = parsePing(body, this.cfg.namespace, this.cfg.nodeId);
    } catch (err) {
      return this.refuse(err, 'a ping');
    }
    if (this.stopped) return [409, errBody('EBUSY', 'worker not running')];
    const refused = this.deposed(p.term);
    if (refused) return refused;
    this.contactFrom(p.leaseMs, p.consistency, p.leaseStamp);
    const reply = { node: this.cfg.nodeId, applied_revision: this.appliedReported, stamp: this.stamp() };
    let load = null;
    let split = null;
    for (const [pid, rec] of this.set) {
      if (rec.load) {
        (load ??= {})[pid] = rec.load;
        rec.load = null;
      }
      if (rec.splitKey != null) {
        (split ??= {})[pid] = rec.splitKey;
        rec.splitKey = null;
      }
    }
    if (load) reply.load = load;
    if (split) reply.split_at = split;
    if (this.transferAgreed) {
      const ready = this.sorted().filter((r) => r.ready && !r.unready && !r.pending)
        .map((r) => ({ partition: r.partition, generation: r.generation }));
      if (ready.length > 0) reply.ready = ready;
    }
    return [200, toJSON(reply)];
  }

  async handleAssign(body) {
    let a;
    try {
      a = parseAssign(body, this.cfg.namespace, this.cfg.nodeId);
    } catch (err) {
      return this.refuse(err, 'an assignment');
    }
    if (this.stopped) return [409, errBody('EBUSY', 'worker stopping')];
    const refused = this.deposed(a.term);
    if (refused) return refused;
    // may queue a lease drop first; an assignment older than one applied renews nothing, unless
    // it resynchronises this worker from a revision the coordinator never issued (a strict
    // worker would stay wedged: the assignment would bring no lease to apply it under)
    const older = a.revision < this.lastRevision && !(a.resyncFrom > 0n && a.resyncFrom === this.lastRevision);
    const grantEnd = this.contactFrom(older ? 0 : a.leaseMs, a.consistency, a.leaseStamp);
    return new Promise((resolve) => this.enqueue({ kind: 'assign', a, grantEnd, resolve }));
  }

  // ---- the job queue ------------------------------------------------------------------------

  enqueue(job) {
    this.jobs.push(job);
    if (!this.jobsRunning) this.runJobs();
  }

  async runJobs() {
    this.jobsRunning = true;
    try {
      while (this.jobs.length > 0 && !this.stopped) {
        const job = this.jobs.shift();
        if (job.kind === 'assign') {
          job.resolve(await this.apply(job.a, job.grantEnd));
        } else if (job.kind === 'lease') {
          this.leaseQueued = false;
          if (!this.leaseLapsed) continue;
          this.log('warn', 'lease lapsed without contact: deleting every replica');
          await this.dropAll(CAUSE_LEASE);
        } else {
          await this.dropAll(CAUSE_RELEASE);
        }
        this.changed();
      }
      for (const job of this.jobs.splice(0)) { // stopping: answer what is queued without running it
        job.resolve?.([409, errBody('EBUSY', 'worker stopping')]);
      }
    } finally {
      this.jobsRunning = false;
    }
  }

  info(r, revision, cause, update = false, oldGeneration = 0n) {
    return {
      namespace: this.cfg.namespace, node: this.cfg.nodeId, partition: r.partition, slot: r.slot,
      role: r.role, state: r.state, generation: r.generation, revision,
      range: r.range ? { lo: r.range.lo, hi: r.range.hi } : null, update, oldGeneration, cause,
      from: r.from ? { node: r.from.node, address: r.from.address } : null,
    };
  }

  async call(hook, info) {
    try {
      await hook(info);
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  async deleteRec(rec, revision, cause, failed) {
    const err = await this.call(this.cfg.delete, this.info(rec, revision, cause));
    if (err !== null) {
      this.log('warn', `delete ${rec.partition} failed: ${err}`);
      failed?.push({ partition: rec.partition, error: err || 'delete failed' });
    }
    this.set.delete(rec.partition); // it counts as gone either way
  }

  sorted() {
    return [...this.set.values()].sort((a, b) => (a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0));
  }

  async dropAll(cause) {
    for (const rec of this.sorted()) await this.deleteRec(rec, this.lastRevision, cause, null);
    this.appliedReported = 0n; // the set is gone without an assignment: only a full set applies
    if (cause === CAUSE_LEASE) {
      this.counts.leaseExpiries++;
      this.leaseLapsed = false;
    } else {
      this.released = true;
    }
  }

  async serveOne(r, revision, failed) {
    let rec = this.set.get(r.partition);
    if (rec && rec.generation === r.generation && rec.role === r.role) {
      rec.slot = r.slot; // nothing to call: keep them current
      rec.state = r.state;
      if (r.state !== 'adding') rec.ready = false; // the coordinator took its readiness
      return;
    }
    const update = rec !== undefined;
    const oldGeneration = update ? rec.generation : 0n;
    if (!update) {
      rec = { ...r, pending: true, load: null, splitKey: null };
      this.set.set(r.partition, rec);
    }
    Object.assign(rec, { unready: false, ready: false, serving: true }); // a new serve: its own readiness
    const err = await this.call(this.cfg.serve, this.info(r, revision, CAUSE_ASSIGN, update, oldGeneration));
    rec.serving = false;
    if (err !== null) {
      failed.push({ partition: r.partition, error: err || 'serve failed' });
      if (!update) this.set.delete(r.partition); // an update keeps the old generation served
      return;
    }
    Object.assign(rec, r, { pending: false });
  }

  /** Runs one assignment: stale ones are only answered; a delta on another base is refused
   * (409) and changes nothing; one that arrived before a lease lapse is not applied. */
  async apply(a, grantEnd = Infinity) {
    // stale: older than the last applied (unless the coordinator resynchronises us from a
    // revision it never issued: a forged assignment would wedge us otherwise), or of a term
    // older than one seen since it was queued
    const stale = (a.revision < this.lastRevision && !(a.resyncFrom > 0n && a.resyncFrom === this.lastRevision))
      || (a.term >= 0 && a.term < this.termSeen);
    this.checkLapse(this.now()); // a lapse resets appliedReported: no delta fits then
    if (!stale && a.delta && a.baseRevision !== this.appliedReported) {
      this.log('info', `refused delta ${a.revision}: its base ${a.baseRevision} is not the applied revision ${this.appliedReported}`);
      this.counts.deltasRefused++;
      return [409, toJSON({
        code: 'ESTALE',
        message: `delta from revision ${a.baseRevision}, but the revision applied here is ${this.appliedReported}: send a full assignment`,
        applied_revision: this.appliedReported,
      })];
    }
    // A strict assignment is applied only while its own grant lasts: one delivered late, or
    // that waited past its grant, may be one the coordinator gave up on (section 6).
    const expired = this.leaseLapsed ||
      (!stale && a.leaseMs > 0 && this.leaseEff(a.leaseMs) !== 0 && this.now() >= grantEnd);
    const failed = [];
    if (stale) {
      this.log('info', `ignored assignment ${a.revision}: older than ${this.lastRevision}`);
    } else if (expired) {
      this.log('warn', `no lease for assignment ${a.revision} (lapsed, or its grant ran out): not applied`);
    } else {
      if (a.delta) {
        for (const pid of a.removed) {
          const rec = this.set.get(pid);
          if (rec) await this.deleteRec(rec, a.revision, CAUSE_ASSIGN, failed);
        }
      } else {
        for (const rec of this.sorted()) {
          if (!a.byId.has(rec.partition)) await this.deleteRec(rec, a.revision, CAUSE_ASSIGN, failed);
        }
      }
      for (const r of a.replicas) await this.serveOne(r, a.revision, failed);
    }
    const applied = !stale && !expired;
    if (applied) {
      this.lastRevision = a.revision;
      if (!this.leaseLapsed) this.appliedReported = a.revision; // a lapse noticed meanwhile: the drop comes next
      this.counts.assignments++;
      if (a.delta) this.counts.deltas++;
      if (a.released) this.released = true;
    }
    return [200, this.assignReply(applied && a.delta, a, failed)];
  }

  /** {"node", "applied_revision", ["delta": true,] "serving", "failed"}; a delta reply lists
   * only the partitions the delta named that are served now. */
  assignReply(delta, a, failed) {
    const names = delta ? [...a.replicas.map((r) => r.partition), ...a.removed] : this.sorted().map((r) => r.partition);
    const serving = [];
    for (const pid of names) {
      const rec = this.set.get(pid);
      if (this.leaseLapsed || !rec || rec.pending) continue;
      const e = { partition: pid, generation: rec.generation };
      if (rec.unready && this.transferAgreed) e.ready = false; // its transfer goes on
      serving.push(e);
    }
    const reply = { node: this.cfg.nodeId, applied_revision: this.appliedReported, stamp: this.stamp() };
    if (delta) reply.delta = true;
    reply.serving = serving;
    reply.failed = failed;
    return toJSON(reply);
  }

  // ---- the timer and the control loop -------------------------------------------------------

  tick() {
    const now = this.now();
    this.checkLapse(now);
    let rereg = this.cfg.reregisterAfterMs ?? 0;
    if (rereg === 0) rereg = Math.max(10 * this.pingIntervalMs, 3000);
    if (this.registered && !this.wantRegister && !this.leaving && !this.released && now - this.lastAlive >= rereg) {
      this.log('warn', `no ping for ${Math.round(now - this.lastAlive)} ms: registering again`);
      this.wantRegister = true;
      this.kick();
    }
  }

  kick() {
    this.kickFn?.();
  }

  setError(what, err) {
    this.lastError = `${what}: ${err.message}`;
    this.log('warn', this.lastError);
  }

  async controlLoop() {
    let backoff = 50;
    const signal = this.abort.signal;
    while (!this.stopped) {
      let ok;
      if (this.leaving && !this.leaveDone) ok = await this.leaveOnce();
      else if (this.wantRegister && !this.leaving) ok = await this.registerOnce();
      else {
        await new Promise((resolve) => {
          this.kickFn = resolve;
          if (signal.aborted) resolve();
          else signal.addEventListener('abort', resolve, { once: true });
        });
        this.kickFn = null;
        continue;
      }
      if (ok) {
        backoff = 50;
        continue;
      }
      const d = backoff - backoff / 4 + Math.random() * (backoff / 2); // +-25%: restarts spread out
      await new Promise((resolve) => {
        this.kickFn = resolve;
        sleep(d, signal).then(resolve);
      });
      this.kickFn = null;
      backoff = Math.min(backoff * 2, this.cfg.backoffMaxMs);
    }
  }

  nsPath() {
    return `/v1/namespaces/${encodeURIComponent(this.cfg.namespace)}`;
  }

  async call2xx(method, path, body) {
    const r = await this.coords.request(method, path, body, { signal: this.abort.signal });
    if (r.status < 200 || r.status > 299) throw ShardzError.fromReply(r.status, r.body);
    return r.body;
  }

  learn(root) {
    for (const o of [root, root?.config]) {
      if (!o || typeof o !== 'object') continue;
      if (typeof o.ping_interval_ms === 'bigint' && o.ping_interval_ms > 0n) this.pingIntervalMs = Number(o.ping_interval_ms);
      if (typeof o.lease_ms === 'bigint' && o.lease_ms > 0n) this.leaseMs = Number(o.lease_ms);
      if (Object.prototype.hasOwnProperty.call(o, 'consistency')) this.consistency = o.consistency === 'available' ? 0 : 1;
    }
    // the registering coordinator's leadership (PROTOCOL.md 4.2)
    if (typeof root?.term === 'bigint' && Number(root.term) > this.termSeen) this.termSeen = Number(root.term);
  }

  async registerOnce() {
    const body = toJSON({
      id: this.cfg.nodeId, address: this._address, zone: this.cfg.zone ?? '',
      capacity: this.cfg.capacity ?? {}, features: ['delta', 'term', 'transfer'], incarnation: this.incarnation,
      stamp: this.stamp(), // a lease granted on this registration runs from here
    });
    let root;
    try {
      root = parseJSON(await this.call2xx('POST', `${this.nsPath()}/nodes`, body));
      this.learn(root);
      this.deltaAgreed = Array.isArray(root?.features) && root.features.includes('delta'); // each registration starts over
      this.transferAgreed = Array.isArray(root?.features) && root.features.includes('transfer');
      if (this.cfg.lease === 'auto' && this.consistency < 0) { // the reply did not say the mode
        this.learn(parseJSON(await this.call2xx('GET', this.nsPath())));
      }
    } catch (err) {
      if (this.stopped) return false;
      this.setError('register', err);
      return false;
    }
    this.registered = true;
    this.wantRegister = false;
    this.counts.registrations++;
    this.lastAlive = this.now();
    this.lastError = '';
    this.log('info', `registered ${this.cfg.namespace}/${this.cfg.nodeId} at ${this._address} (ping ${this.pingIntervalMs} ms, lease ${this.leaseMs} ms, ${this.consistency === 0 ? 'available' : 'strict'}, delta ${this.deltaAgreed})`);
    this.changed();
    return true;
  }

  async leaveOnce() {
    try {
      await this.call2xx('POST', `${this.nsPath()}/nodes/${encodeURIComponent(this.cfg.nodeId)}/leave`, '{}');
    } catch (err) {
      if (err instanceof ShardzError && err.status === 404) {
        // the coordinator does not know this node: nothing is routed here, so dropping what is
        // still served is safe; the job queue does it, then counts the node released
        this.leaveDone = true;
        this.enqueue({ kind: 'release' });
        return true;
      }
      if (!this.stopped) this.setError('leave', err);
      return false;
    }
    this.leaveDone = true;
    this.log('info', 'leave sent; waiting to be released');
    return true;
  }

  /** Asks the coordinator to move this worker's partitions away; resolves once released (an
   * assignment with "released": true). Rejects after timeoutMs (<0: never). Call stop() after. */
  async leave(timeoutMs = -1) {
    if (!this.started || this.stopped) throw new Error('shardz: worker not running');
    if (!this.leaving) {
      this.leaving = true;
      this.kick();
    }
    return this.waitFor(() => this.released, timeoutMs, 'the release');
  }

  /** Records a load sample for a served partition, sent with the next ping reply (the latest
   * value per partition and dimension). Throws on a bad sample or a partition not served. */
  reportLoad(partition, dimension, value) {
    if (!validId(dimension, 63) || typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`shardz: bad load sample ${dimension}=${value}`);
    }
    const rec = this.set.get(partition);
    if (!rec) throw new Error(`shardz: partition '${partition}' is not served here`);
    (rec.load ??= {})[dimension] = value;
  }

  /** State transfer (PROTOCOL.md 4.3): from a serve hook, for the partition it serves, when
   * the replica must copy its data first (from info.from.address): it is served, but the
   * coordinator keeps routing on the old owner until ready(), or the namespace's
   * transfer_timeout_ms. A hook that never calls it is ready at once. */
  notReady(partition) {
    const rec = this.set.get(partition);
    if (!rec || !rec.serving) throw new Error(`shardz: partition '${partition}' is not being served now`);
    rec.unready = true;
    rec.ready = false;
  }

  /** The transfer notReady() marked is done, at the generation (BigInt) its serve hook was
   * given: the next ping replies list it until an assignment shows it serving. */
  ready(partition, generation) {
    const rec = this.set.get(partition);
    if (!rec || (rec.generation !== BigInt(generation) && !rec.serving)) {
      throw new Error(`shardz: partition '${partition}' is not served at generation ${generation}`);
    }
    if (rec.unready) {
      rec.unready = false;
      rec.ready = true;
    }
  }

  /** Suggests where to split a served range (range namespaces), sent with the next ping. */
  reportSplitKey(partition, key) {
    if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > 1024) throw new TypeError('shardz: a split key is 1-1024 bytes');
    const rec = this.set.get(partition);
    if (!rec) throw new Error(`shardz: partition '${partition}' is not served here`);
    rec.splitKey = key;
  }

  /** A snapshot of the worker's state. */
  status() {
    let serving = 0;
    for (const r of this.set.values()) if (!r.pending) serving++;
    return {
      registered: this.registered, leaving: this.leaving, released: this.released,
      leaseEnforced: this.leaseEff() !== 0, appliedRevision: this.appliedReported,
      pingIntervalMs: this.pingIntervalMs, leaseMs: this.leaseMs, serving,
      deltaAgreed: this.deltaAgreed, lastError: this.lastError, ...this.counts,
    };
  }

  /** Stops the worker: listener, timer, control loop; queued assignments are answered 409
   * EBUSY. Does not call delete: the process owns its data until it exits. */
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    clearInterval(this.timer);
    this.changed();
    for (const job of this.jobs.splice(0)) job.resolve?.([409, errBody('EBUSY', 'worker stopping')]);
    await this.control;
    if (this.server) {
      await new Promise((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections?.();
      });
    }
    this.coords.close();
  }
}
