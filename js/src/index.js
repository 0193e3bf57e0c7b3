// The shardz package for Node.js: worker, router, operator client and key hashing
// (docs/PROTOCOL.md). Re-exports only.
export { Worker, CAUSE_ASSIGN, CAUSE_LEASE, CAUSE_RELEASE } from './worker.js';
export { Router, Snapshot } from './router.js';
export { Client } from './client.js';
export { ShardzError } from './errors.js';
export { hashTag, keyHash, keySlot, xxh3 } from './hash.js';
export { parseJSON, toJSON } from './json.js';
