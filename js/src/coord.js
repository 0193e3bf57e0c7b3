// Requests to the coordinator(s): one list of addresses (several for HA, docs/PROTOCOL.md
// section 10), the secret, a bounded reply. A request goes to the coordinator that answered last;
// a connection that could not be made (the request never left) or a 503 ENOTLEADER (nothing
// changed) moves on to the next one at once. Runs on the event loop; no state but the index.
import http from 'node:http';

const MAX_REPLY = 256 << 20;
const NEVER_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND']);

/** Splits "h1:p1,h2:p2" (or an array of such) into [{host, port}]. Throws on a bad item. */
export function parseCoordinators(list) {
  const items = (Array.isArray(list) ? list : [list]).flatMap((s) => String(s).split(','));
  const out = [];
  for (let a of items) {
    a = a.trim().replace(/^http:\/\//, '').replace(/\/$/, '');
    if (!a) continue;
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(a);
    if (!m || Number(m[2]) > 65535) throw new TypeError(`shardz: coordinator address '${a}' is not host:port`);
    out.push({ host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) });
  }
  if (out.length === 0) throw new TypeError('shardz: no coordinator address');
  return out;
}

export class Coordinators {
  constructor(list, { secret = '', timeoutMs = 5000 } = {}) {
    this.bases = parseCoordinators(list);
    this.secret = secret || '';
    this.timeoutMs = timeoutMs;
    this.cur = 0;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  /** One request: resolves {status, body} from the first coordinator that answers (any
   * status); rejects when none could be reached. opts: {timeoutMs, signal}. */
  async request(method, path, body = null, opts = {}) {
    let lastErr;
    for (let i = 0; i < this.bases.length; i++) {
      const idx = (this.cur + i) % this.bases.length;
      const last = i === this.bases.length - 1;
      let reply;
      try {
        reply = await this.once(this.bases[idx], method, path, body, opts);
      } catch (err) {
        lastErr = err;
        if (!last && NEVER_SENT.has(err.code) && !opts.signal?.aborted) continue;
        throw err;
      }
      if (reply.status === 503 && !last && reply.body.includes('ENOTLEADER')) continue;
      this.cur = idx;
      return reply;
    }
    throw lastErr;
  }

  once(base, method, path, body, { timeoutMs = this.timeoutMs, signal } = {}) {
    return new Promise((resolve, reject) => {
      const headers = {};
      if (body != null) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = Buffer.byteLength(body);
      }
      if (this.secret) headers.Authorization = `Bearer ${this.secret}`;
      const req = http.request({ host: base.host, port: base.port, method, path, headers, agent: this.agent, signal });
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('shardz: request timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('response', (res) => {
        const chunks = [];
        let size = 0;
        res.on('data', (c) => {
          size += c.length;
          if (size > MAX_REPLY) req.destroy(new Error('shardz: reply too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      req.end(body ?? undefined);
    });
  }

  close() {
    this.agent.destroy();
  }
}
