// Key hashing for hash namespaces (docs/PROTOCOL.md section 7): the Redis Cluster hash-tag rule,
// XXH3-64 with seed 0, and the slot as the hash's low bits. XXH3 comes from the npm package
// hash-wasm (pinned in package-lock.json): a maintained, dependency-free WebAssembly build of
// the reference algorithm, checked here against the `xxhsum -H3` vectors (test/hash.test.js).
// Synchronous once this module is loaded (its top-level await compiles the WebAssembly).
import { createXXHash3 } from 'hash-wasm';

const hasher = await createXXHash3(0, 0);
const encoder = new TextEncoder();

/** The bytes of key that are hashed: between the first '{' and the first '}' after it when
 * that is not empty, otherwise the whole key. key: a string (its UTF-8 bytes) or a Uint8Array. */
export function hashTag(key) {
  const b = typeof key === 'string' ? encoder.encode(key) : key;
  const open = b.indexOf(0x7b);
  if (open < 0) return b;
  const close = b.indexOf(0x7d, open + 1);
  if (close <= open + 1) return b;
  return b.subarray(open + 1, close);
}

function digest(bytes) {
  hasher.init();
  hasher.update(bytes);
  return hasher.digest('binary'); // 8 bytes, big-endian
}

/** XXH3-64 (seed 0) of raw bytes (a Uint8Array or a string's UTF-8), as a BigInt. */
export function xxh3(bytes) {
  const d = digest(typeof bytes === 'string' ? encoder.encode(bytes) : bytes);
  return new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, false);
}

/** XXH3-64 of key's hash tag, as a BigInt. */
export function keyHash(key) {
  return xxh3(hashTag(key));
}

/** The slot of key in a slot space of `slots` entries (a power of two up to 2^20). */
export function keySlot(key, slots) {
  const d = digest(hashTag(key));
  // the low 32 bits of the big-endian digest; slots <= 2^20 needs no more
  const low = ((d[4] << 24) | (d[5] << 16) | (d[6] << 8) | d[7]) >>> 0;
  return (low & (slots - 1)) >>> 0;
}
