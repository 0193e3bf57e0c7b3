// Test helpers: an in-memory coordinator (registration and leave), a hook recorder, a clock.
import http from 'node:http';

export function fakeCoordinator({ consistency = 'available', leaveStatus = 202, features = '["delta"]' } = {}) {
  const f = { registers: [], leaves: 0, consistency, leaveStatus };
  f.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/namespaces/kv/nodes') {
        f.registers.push(JSON.parse(body));
        res.end(`{"node":{"id":"w1"},"ping_interval_ms":50,"lease_ms":1000,"consistency":"${f.consistency}","revision":3,"features":${features}}`);
      } else if (req.method === 'POST' && req.url.endsWith('/leave')) {
        f.leaves++;
        res.writeHead(f.leaveStatus);
        res.end(f.leaveStatus === 404 ? '{"code":"ENOENT","message":"no node w1"}' : '{}');
      } else {
        res.writeHead(404);
        res.end('{"code":"ENOENT","message":"no route"}');
      }
    });
  });
  return new Promise((resolve) => f.server.listen(0, '127.0.0.1', () => {
    f.addr = `127.0.0.1:${f.server.address().port}`;
    f.close = () => new Promise((r) => { f.server.close(r); f.server.closeAllConnections?.(); });
    resolve(f);
  }));
}

export class HookLog {
  constructor() {
    this.calls = [];
    this.listeners = [];
    this.fail = new Set();
    this.block = null; // a promise serve waits on
  }

  record(s) {
    this.calls.push(s);
    for (const l of this.listeners.splice(0)) l();
  }

  serve = async (r) => {
    if (this.block) {
      this.record(`blocked:${r.partition}`);
      await this.block;
    }
    let s = `serve ${r.partition} g${r.generation} ${r.role}`;
    if (r.update) s += ` update(g${r.oldGeneration})`;
    if (r.range) s += ` [${JSON.stringify(r.range.lo)},${r.range.hi ?? '+inf'})`;
    this.record(s);
    if (this.fail.has(r.partition)) throw new Error('disk full');
  };

  delete = async (r) => {
    this.record(`delete ${r.partition} ${r.cause}`);
  };

  take() {
    return this.calls.splice(0);
  }

  /** Resolves once n calls are recorded (rejects after 5 s). */
  async waitCalls(n) {
    const deadline = Date.now() + 5000;
    while (this.calls.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.calls.length} hook calls: ${this.calls}`);
      await new Promise((r) => { this.listeners.push(r); setTimeout(r, 100); });
    }
  }
}

export class FakeClock {
  constructor() {
    this.t = 1000000;
  }

  now = () => this.t;

  add(ms) {
    this.t += ms;
  }
}

export async function post(addr, path, body, headers = {}) {
  const res = await fetch(`http://${addr}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}

export const rep = (pid, gen, role) => `{"partition":"${pid}","slot":0,"role":"${role}","generation":${gen},"state":"serving"}`;
export const assign = (rev, extra, ...reps) => `{"namespace":"kv","node":"w1","revision":${rev}${extra},"replicas":[${reps.join(',')}]}`;
