// Key hashing for hash namespaces (docs/PROTOCOL.md section 7): the Redis Cluster hash-tag rule,
// XXH3-64 with seed 0, and the slot as the hash's low bits. XXH3 comes from the npm package
// hash-wasm (pinned in package-lock.json): a maintained, dependency-free WebAssembly build of
// the reference algorithm, checked here against the `xxhsum -H3` vectors (test/hash.test.js).
// Synchronous once this module is loaded (its top-level await compiles the WebAssembly).
import { createXXHash3 } from 'hash-wasm';

const hasher = await createXXHash3(0, 0);

/** The part of key that is hashed: between the first '{' and the first '}' after it when that
 * is not empty, otherwise the whole key. A string key gives a string (its UTF-8 bytes are hashed:
 * '{' and '}' are ASCII, so the rule reads the same on the string and on its bytes); a
 * Uint8Array gives a Uint8Array view. */
export function hashTag(key) {
  const open = key.indexOf(typeof key === 'string' ? '{' : 0x7b);
  if (open < 0) return key;
  const close = key.indexOf(typeof key === 'string' ? '}' : 0x7d, open + 1);
  if (close <= open + 1) return key;
  return typeof key === 'string' ? key.slice(open + 1, close) : key.subarray(open + 1, close);
}

// hash-wasm encodes a string as UTF-8 itself, faster than a TextEncoder.encode per key.
function digest(data) {
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary'); // 8 bytes, big-endian
}

/** XXH3-64 (seed 0) of raw bytes (a Uint8Array or a string's UTF-8), as a BigInt. */
export function xxh3(bytes) {
  const d = digest(bytes);
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
