// The worker side of the protocol's messages (docs/PROTOCOL.md 4.2, 4.3): parses and validates a
// ping or an assignment (full or delta) addressed to this worker. Pure: no I/O or clock; every
// field is bounded; a message that fails any check is refused whole (a ProtoError with the code
// and reason), so it changes nothing.
import { parseJSON } from './json.js';
import { ProtoError } from './errors.js';

export const MAX_BODY = 1 << 20;
const MAX_LEASE_MS = 86400000n;
const MAX_SLOT = 255n;
const INT64_MAX = (1n << 63n) - 1n;
const ID_RE = /^[A-Za-z0-9._:-]+$/;
const NS_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** 1-max bytes of [A-Za-z0-9._:-] (docs/PROTOCOL.md section 1). */
export function validId(s, max = 255) {
  return typeof s === 'string' && s.length >= 1 && s.length <= max && ID_RE.test(s);
}

/** 1-63 bytes of [a-z0-9._-], starting with a letter or digit. */
export function validNamespace(s) {
  return typeof s === 'string' && NS_RE.test(s);
}

const fail = (code, msg) => {
  throw new ProtoError(code, msg);
};
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const int = (v, lo, hi) => typeof v === 'bigint' && v >= lo && v <= hi;

function loadAddressed(body, ns, node) {
  if (body.length === 0) fail('EINVAL', 'empty body');
  let root;
  try {
    root = parseJSON(body);
  } catch (err) {
    fail('EINVAL', `malformed JSON: ${err.message}`);
  }
  if (!isObj(root)) fail('EINVAL', 'the body is not a JSON object');
  if (typeof root.namespace !== 'string' || typeof root.node !== 'string') {
    fail('EINVAL', '"namespace" and "node" are required strings');
  }
  if (root.namespace !== ns || root.node !== node) {
    fail('EPROTO', `addressed to ${root.namespace.slice(0, 63)}/${root.node.slice(0, 255)}, this is ${ns}/${node}`);
  }
  return root;
}

function consistencyOf(o) {
  if (!has(o, 'consistency')) return -1;
  return o.consistency === 'available' ? 0 : 1;
}

function common(root) {
  if (!int(root.revision, 0n, INT64_MAX)) fail('EINVAL', '"revision" must be an integer >= 0');
  let leaseMs = 0;
  if (has(root, 'lease_ms')) {
    if (!int(root.lease_ms, 1n, MAX_LEASE_MS)) fail('EINVAL', `"lease_ms" must be an integer in [1, ${MAX_LEASE_MS}]`);
    leaseMs = Number(root.lease_ms);
  }
  let leaseStamp = -1; // the worker's own clock (ms) the grant runs from; -1: not said
  if (has(root, 'lease_stamp')) {
    if (!int(root.lease_stamp, 0n, INT64_MAX)) fail('EINVAL', '"lease_stamp" must be an integer >= 0');
    leaseStamp = Number(root.lease_stamp);
  }
  let term = -1; // the sending coordinator's leadership (PROTOCOL.md 4.2); -1: not said
  if (has(root, 'term')) {
    if (!int(root.term, 0n, INT64_MAX)) fail('EINVAL', '"term" must be an integer >= 0');
    term = Number(root.term);
  }
  return { revision: root.revision, leaseMs, leaseStamp, term, consistency: consistencyOf(root) };
}

/** {revision: BigInt, leaseMs: number (0: none), leaseStamp: number (-1: none),
 * consistency: -1|0|1}. body: a string. */
export function parsePing(body, ns, node) {
  return common(loadAddressed(body, ns, node));
}

function name(rep, key, dflt, i) {
  if (!has(rep, key)) return dflt;
  if (!validId(rep[key], 63)) fail('EINVAL', `replicas[${i}].${key} must be a name of 1-63 id characters`);
  return rep[key];
}

function bound(rng, key, i) {
  const v = rng[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || Buffer.byteLength(v) > 1024 || v.includes('\0')) {
    fail('EINVAL', `replicas[${i}].range.${key} must be a string of at most 1024 bytes`);
  }
  return v;
}

function replica(rep, i) {
  if (!isObj(rep)) fail('EINVAL', `replicas[${i}] is not an object`);
  if (!validId(rep.partition)) fail('EINVAL', `replicas[${i}].partition must be an id (1-255 of [A-Za-z0-9._:-])`);
  if (!int(rep.generation, 0n, INT64_MAX)) fail('EINVAL', `replicas[${i}].generation must be an integer >= 0`);
  let slot = 0;
  if (has(rep, 'slot')) {
    if (!int(rep.slot, 0n, MAX_SLOT)) fail('EINVAL', `replicas[${i}].slot must be an integer in [0, 255]`);
    slot = Number(rep.slot);
  }
  const r = {
    partition: rep.partition, slot, generation: rep.generation,
    role: name(rep, 'role', 'none', i), state: name(rep, 'state', 'serving', i), range: null,
  };
  if (rep.range !== undefined && rep.range !== null) {
    if (!isObj(rep.range)) fail('EINVAL', `replicas[${i}].range must be an object {lo, hi}`);
    const lo = bound(rep.range, 'lo', i);
    r.range = { lo: lo ?? '', hi: bound(rep.range, 'hi', i) };
  }
  r.from = null; // state transfer (PROTOCOL.md 4.3): {node, address} it comes from
  if (rep.from !== undefined && rep.from !== null) {
    const f = rep.from;
    if (!isObj(f) || !validId(f.node) || typeof f.address !== 'string' || f.address.length === 0 || f.address.length > 261) {
      fail('EINVAL', `replicas[${i}].from must be {"node": id, "address": host:port}`);
    }
    r.from = { node: f.node, address: f.address };
  }
  return r;
}

const byPartition = (a, b) => (a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0);

/** {revision, leaseMs, consistency, released, delta, baseRevision, replicas (sorted by
 * partition, each {partition, slot, role, state, generation: BigInt, range: {lo, hi}|null}),
 * removed (sorted ids), byId: Map}. */
export function parseAssign(body, ns, node) {
  const root = loadAddressed(body, ns, node);
  const a = common(root);
  a.released = false;
  if (has(root, 'released')) {
    if (typeof root.released !== 'boolean') fail('EINVAL', '"released" must be a boolean');
    a.released = root.released;
  }
  a.replicas = [];
  if (!(a.released && !has(root, 'replicas'))) { // a release may leave the list out
    if (!Array.isArray(root.replicas)) fail('EINVAL', '"replicas" must be an array');
    if (a.released && root.replicas.length > 0) fail('EPROTO', 'a release must carry no replicas');
    a.replicas = root.replicas.map(replica).sort(byPartition);
    for (let i = 1; i < a.replicas.length; i++) {
      if (a.replicas[i - 1].partition === a.replicas[i].partition) fail('EPROTO', `partition ${a.replicas[i].partition} is listed twice`);
    }
  }
  a.byId = new Map(a.replicas.map((r) => [r.partition, r]));
  a.delta = false;
  a.baseRevision = 0n;
  a.removed = [];
  a.resyncFrom = 0n; // full only: applied even if older, when the last applied is this one
  if (has(root, 'resync_from')) {
    if (!int(root.resync_from, 1n, INT64_MAX) || has(root, 'base_revision')) fail('EINVAL', '"resync_from" must be an integer >= 1, on a full assignment');
    a.resyncFrom = root.resync_from;
  }
  if (!has(root, 'base_revision')) {
    if (has(root, 'removed')) fail('EPROTO', '"removed" is only for a delta (with "base_revision")');
    return a;
  }
  if (!int(root.base_revision, 0n, INT64_MAX)) fail('EINVAL', '"base_revision" must be an integer >= 0');
  if (root.base_revision >= a.revision) fail('EINVAL', `"base_revision" (${root.base_revision}) must be below "revision" (${a.revision})`);
  a.delta = true;
  a.baseRevision = root.base_revision;
  if (a.released) fail('EPROTO', 'a release is never a delta');
  if (!has(root, 'removed')) return a;
  if (!Array.isArray(root.removed)) fail('EINVAL', '"removed" must be an array of partition ids');
  root.removed.forEach((pid, i) => {
    if (!validId(pid)) fail('EINVAL', `removed[${i}] must be an id (1-255 of [A-Za-z0-9._:-])`);
  });
  a.removed = [...root.removed].sort();
  a.removed.forEach((pid, i) => {
    if (i > 0 && a.removed[i - 1] === pid) fail('EPROTO', `partition ${pid} is removed twice`);
    if (a.byId.has(pid)) fail('EPROTO', `partition ${pid} is both listed and removed`);
  });
  return a;
}
