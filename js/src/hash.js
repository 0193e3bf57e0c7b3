// Key hashing for hash namespaces (docs/PROTOCOL.md section 7): the Redis Cluster hash-tag rule,
// XXH3-64 with seed 0 (src/xxh3.js), and the slot as the hash's low bits. A string key is hashed
// as its UTF-8 bytes, encoded into one reused buffer. Synchronous; no allocation per key.
import { xxh3Bytes, xxh3Low32 } from './xxh3.js';

const encoder = new TextEncoder();
let buf = new Uint8Array(1024);

/** The UTF-8 bytes of s in the shared buffer; returns their count. ASCII (most keys) is copied
 * directly, which is about twice as fast as encodeInto for short keys. */
function encode(s) {
  const n = s.length;
  if (n * 3 > buf.length) buf = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return encoder.encodeInto(s, buf).written;
    buf[i] = c;
  }
  return n;
}

/** The part of key that is hashed: between the first '{' and the first '}' after it when that
 * is not empty, otherwise the whole key. A string key gives a string (its UTF-8 bytes are hashed:
 * '{' and '}' are ASCII, so the rule reads the same on the string and on its bytes); a
 * Uint8Array gives a Uint8Array view. */
export function hashTag(key) {
  const str = typeof key === 'string';
  const open = key.indexOf(str ? '{' : 0x7b);
  if (open < 0) return key;
  const close = key.indexOf(str ? '}' : 0x7d, open + 1);
  if (close <= open + 1) return key;
  return str ? key.slice(open + 1, close) : key.subarray(open + 1, close);
}

/** XXH3-64 (seed 0) of raw bytes (a Uint8Array, or a string's UTF-8), as a BigInt. */
export function xxh3(bytes) {
  if (typeof bytes === 'string') return xxh3Bytes(buf, encode(bytes));
  return xxh3Bytes(bytes);
}

/** XXH3-64 of key's hash tag, as a BigInt. */
export function keyHash(key) {
  return xxh3(hashTag(key));
}

/** The slot of key in a slot space of `slots` entries (a power of two up to 2^20). */
export function keySlot(key, slots) {
  const tag = hashTag(key);
  const low = typeof tag === 'string' ? xxh3Low32(buf, encode(tag)) : xxh3Low32(tag);
  return (low & (slots - 1)) >>> 0;
}
