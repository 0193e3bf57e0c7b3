// The JavaScript package's conformance driver (tests/conformance/README.md, "The driver
// contract"): an example worker on Worker that logs its hooks as JSON event lines and takes
// commands on stdin, a router on Router, and the key -> slot vectors of keySlot. Runs on the event
// loop: stdin lines are handled in order (one answer each), hooks write their event line
// synchronously (appendFileSync: on disk before the hook returns).
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Worker, Router, CAUSE_LEASE, keyHash, keySlot, toJSON } from '../../js/src/index.js';

function usage() {
  process.stderr.write('usage: conformance.mjs worker|router|hash ... (tests/conformance/README.md)\n');
  process.exit(2);
}

const say = (line) => process.stdout.write(`${line}\n`);
const monoMs = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC on Linux

function options(args, multi = []) {
  const o = {};
  if (args.length % 2) usage();
  for (let i = 0; i < args.length; i += 2) {
    if (!args[i].startsWith('--')) usage();
    const k = args[i].slice(2);
    if (multi.includes(k)) (o[k] ??= []).push(args[i + 1]);
    else o[k] = args[i + 1];
  }
  return o;
}

async function lines(fn) {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) await fn(line);
}

async function worker(args) {
  const o = options(args, ['capacity']);
  for (const k of ['coordinator', 'ns', 'node', 'listen', 'events']) if (!o[k]) usage();
  let lapseOpen = false;
  const put = (fields) => appendFileSync(o.events, `${toJSON({ ...fields, t_ms: monoMs() })}\n`);
  const hook = (ev) => (r) => {
    if (ev === 'serve') lapseOpen = false;
    else if (r.cause === CAUSE_LEASE && !lapseOpen) {
      put({ ev: 'lease_lapse' });
      lapseOpen = true;
    }
    const f = { ev, ns: r.namespace, partition: r.partition, slot: r.slot, role: r.role, generation: r.generation };
    if (r.range) Object.assign(f, { lo: r.range.lo, hi: r.range.hi });
    if (ev === 'delete') f.cause = r.cause;
    put(f);
  };
  let capacity;
  for (const c of o.capacity ?? []) {
    const [dim, v] = c.split('=');
    (capacity ??= {})[dim] = Number(v);
  }
  const w = new Worker({
    coordinators: o.coordinator, namespace: o.ns, nodeId: o.node, listen: o.listen, zone: o.zone ?? '',
    capacity, secret: o.secret, serve: hook('serve'), delete: hook('delete'),
  });
  await w.start();
  process.on('SIGTERM', () => w.stop().then(() => process.exit(0))); // stop without leaving
  await w.waitRegistered();
  put({ ev: 'registered' });
  await lines(async (line) => {
    const f = line.split(' ');
    try {
      if (f.length === 5 && f[0] === 'load') {
        w.reportLoad(f[2], f[3], Number(f[4]));
        say('ok');
      } else if (f.length === 4 && f[0] === 'split') {
        w.reportSplitKey(f[2], f[3]);
        say('ok');
      } else if (f.length === 3 && f[0] === 'lease_ok') {
        say(String(w.leaseOk()));
      } else if (line === 'leave') {
        try {
          await w.leave(30000);
        } catch (err) {
          say(`error ${err.message}`);
          await w.stop();
          process.exit(1);
        }
        put({ ev: 'left' });
        say('left');
        await w.stop();
        process.exit(0);
      } else {
        say(`error unknown command: ${line}`);
      }
    } catch (err) {
      say(`error ${err.message}`);
    }
  });
  await w.stop();
  process.exit(0);
}

async function router(args) {
  const o = options(args);
  if (!o.coordinator || !o.ns) usage();
  const r = new Router({ coordinators: o.coordinator, namespace: o.ns, secret: o.secret });
  try {
    await r.start(20000);
  } catch (err) {
    process.stderr.write(`router: no first snapshot: ${err.message}\n`);
    process.exit(1);
  }
  say('ready');
  await lines(async (line) => {
    const sp = line.indexOf(' ');
    const cmd = sp < 0 ? line : line.slice(0, sp);
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    if (cmd === 'key' || cmd === 'partition') {
      const snap = r.snapshot(); // one snapshot per answer
      const out = { [cmd]: arg };
      let route;
      if (cmd === 'key') {
        const res = snap.lookupKey(arg);
        route = res.route;
        if (route) {
          out.partition = route.partition;
          if (snap.sharder === 'hash') out.slot = res.slot;
        }
      } else {
        route = snap.lookupPartition(arg);
      }
      if (!route) out.error = 'ENOENT';
      else out.nodes = route.replicas.filter((x) => x.state === 'serving').map((x) => ({ node: x.node, addr: x.address, role: x.role }));
      out.revision = snap.revision;
      say(toJSON(out));
    } else if (cmd === 'wait') {
      await r.waitRevision(BigInt(arg));
      say('ok');
    } else if (cmd === 'revision') {
      say(String(r.revision));
    } else {
      say(`error unknown command: ${line}`);
    }
  });
  await r.stop();
  process.exit(0);
}

function hashes(args) {
  let slots = 16384;
  if (args[0] === '--slots') {
    slots = Number(args[1]);
    args = args.slice(2);
  }
  for (const k of args) say(toJSON({ key: k, hash: keyHash(k).toString(16).padStart(16, '0'), slot: keySlot(k, slots) }));
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'worker') await worker(rest);
else if (cmd === 'router') await router(rest);
else if (cmd === 'hash') hashes(rest);
else usage();
