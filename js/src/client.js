// The operator client (docs/PROTOCOL.md sections 3, 7, 8): namespaces, nodes, partitions, drain,
// move and the coordinator's status, one request per call (several coordinators tried in turn);
// request() for any other route. Replies are parsed with integers as BigInt.
import { Coordinators } from './coord.js';
import { ShardzError } from './errors.js';
import { parseJSON, toJSON } from './json.js';

const enc = encodeURIComponent;
const nsPath = (ns) => `/v1/namespaces/${enc(ns)}`;

export class Client {
  /** cfg: {coordinators, secret, timeoutMs = 10000} */
  constructor(cfg) {
    this.coords = new Coordinators(cfg.coordinators, { secret: cfg.secret, timeoutMs: cfg.timeoutMs ?? 10000 });
  }

  /** Sends body (an object, or null) to method path; resolves the parsed 2xx reply, rejects
   * with a ShardzError for any other status. */
  async request(method, path, body = null) {
    const r = await this.coords.request(method, path, body === null ? null : toJSON(body));
    if (r.status < 200 || r.status > 299) throw ShardzError.fromReply(r.status, r.body);
    return r.body === '' ? null : parseJSON(r.body);
  }

  status() {
    return this.request('GET', '/v1/status');
  }

  createNamespace(config) {
    return this.request('POST', '/v1/namespaces', config);
  }

  async namespaces() {
    return (await this.request('GET', '/v1/namespaces')).namespaces;
  }

  namespace(name) {
    return this.request('GET', nsPath(name));
  }

  deleteNamespace(name) {
    return this.request('DELETE', nsPath(name));
  }

  addPartitions(ns, ids) {
    return this.request('POST', `${nsPath(ns)}/partitions`, { ids });
  }

  /** {nodes: [...], revision} */
  nodes(ns) {
    return this.request('GET', `${nsPath(ns)}/nodes`);
  }

  node(ns, id) {
    return this.request('GET', `${nsPath(ns)}/nodes/${enc(id)}`);
  }

  partition(ns, pid) {
    return this.request('GET', `${nsPath(ns)}/partitions/${enc(pid)}`);
  }

  drain(ns, id) {
    return this.request('POST', `${nsPath(ns)}/nodes/${enc(id)}/drain`);
  }

  undrain(ns, id) {
    return this.request('POST', `${nsPath(ns)}/nodes/${enc(id)}/undrain`);
  }

  /** Moves one replica slot of a partition to node `to` (make-before-break, reason operator). */
  move(ns, pid, slot, to) {
    return this.request('POST', `${nsPath(ns)}/partitions/${enc(pid)}/move`, { slot, to });
  }

  close() {
    this.coords.close();
  }
}
