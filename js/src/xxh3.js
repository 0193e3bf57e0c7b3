// XXH3-64 (xxHash 0.8, seed 0, the default 192-byte secret) in plain JavaScript, on 32-bit
// halves: JavaScript has no 64-bit integer multiply (BigInt allocates and is slow), so every
// 64-bit value is a (hi, lo) pair of uint32 and results come back through a typed-array register
// file (R) to allocate nothing. Pure; single-threaded like all JS.
//
// Why it is written here: the npm packages with XXH3 call into WebAssembly per key (hash-wasm:
// 300-450 ns per short key on this machine, almost all of it the call) or are native addons;
// this one is about 100 ns and has no dependency. It follows the published algorithm (xxhash.h,
// XXH3_64bits, as go/xxh3.go does) and is checked against the `xxhsum -H3` vectors
// (go/testdata/xxh3_vectors.txt) and a live xxhsum (test/hash.test.js).

const SECRET = Uint8Array.from([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
]);

// the primes as (hi, lo)
const P32_1 = 0x9e3779b1;
const P32_2 = 0x85ebca77;
const P32_3 = 0xc2b2ae3d;
const P64_1H = 0x9e3779b1; const P64_1L = 0x85ebca87;
const P64_2H = 0xc2b2ae3d; const P64_2L = 0x27d4eb4f;
const P64_3H = 0x165667b1; const P64_3L = 0x9e3779f9;
const P64_4H = 0x85ebca77; const P64_4L = 0xc2b2ae63;
const P64_5H = 0x27d4eb2f; const P64_5L = 0x165667c5;
const PMX1H = 0x16566791; const PMX1L = 0x9e3779f9;
const PMX2H = 0x9fb21c65; const PMX2L = 0x1e98df25;
const TWO32 = 4294967296;
const INV32 = 1 / TWO32; // x * INV32 | 0: the carry out of a sum of a few uint32s, exactly

// The registers: R[0]:R[1] the last 64-bit result (high, low), R[2]:R[3] the running sum of the
// mid-size paths. A typed array, because a module-level `let` holding a uint32 above 2^30 would
// be boxed as a heap number on every store.
const R = new Uint32Array(4);

const rd32 = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
// the secret's little-endian uint32 at every byte offset, so each read is one load
const SECW = Uint32Array.from({ length: SECRET.length - 3 }, (_, o) => rd32(SECRET, o));
const sec32 = (o) => SECW[o];
const bswap32 = (x) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

/** R[0]:R[1] = a * b, two uint32s, the whole 64-bit product: the low half by Math.imul, the
 * high half from 16-bit pieces (every partial product stays exact; no division or modulo). */
function mul32(a, b) {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const t = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  R[0] = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (t >>> 16);
  R[1] = Math.imul(a, b);
}

/** R[0]:R[1] = the low 64 bits of (aH:aL) * (bH:bL). */
function mul64(aH, aL, bH, bL) {
  mul32(aL, bL);
  R[0] = (R[0] + Math.imul(aH, bL) + Math.imul(aL, bH)) >>> 0;
}

/** R[0]:R[1] = the 128-bit product of (aH:aL) and (bH:bL), its high and low 64 bits xored. */
function mulFold(aH, aL, bH, bL) {
  mul32(aL, bL);
  const llH = R[0];
  const llL = R[1];
  mul32(aL, bH);
  const lhH = R[0];
  const lhL = R[1];
  mul32(aH, bL);
  const hlH = R[0];
  const hlL = R[1];
  mul32(aH, bH);
  const t1 = llH + lhL + hlL;
  const t2 = R[1] + lhH + hlH + ((t1 * INV32) | 0);
  const r3 = (R[0] + ((t2 * INV32) | 0)) >>> 0;
  R[0] = ((t1 >>> 0) ^ r3) >>> 0;
  R[1] = (llL ^ (t2 >>> 0)) >>> 0;
}

/** R[0]:R[1] = XXH64's avalanche of h. */
function xxh64Avalanche(h, l) {
  l = (l ^ (h >>> 1)) >>> 0; // h ^= h >> 33: only bits of the high half reach the low one
  mul64(h, l, P64_2H, P64_2L);
  h = R[0];
  l = (R[1] ^ ((R[1] >>> 29) | (h << 3))) >>> 0; // h ^= h >> 29
  h = (h ^ (h >>> 29)) >>> 0;
  mul64(h, l, P64_3H, P64_3L);
  R[1] = (R[1] ^ R[0]) >>> 0; // h ^= h >> 32
}

/** R[0]:R[1] = XXH3's avalanche of h. */
function avalanche(h, l) {
  l = (l ^ (h >>> 5)) >>> 0; // h ^= h >> 37
  mul64(h, l, PMX1H, PMX1L);
  R[1] = (R[1] ^ R[0]) >>> 0; // h ^= h >> 32
}

/** R[0]:R[1] = XXH3's rrmxmx of h for a 4-8 byte input of length n. */
function rrmxmx(h, l, n) {
  // h ^= rotl(h, 49) ^ rotl(h, 24); rotl 49 = swap halves, then rotl 17
  const r49h = ((l << 17) | (h >>> 15)) >>> 0;
  const r49l = ((h << 17) | (l >>> 15)) >>> 0;
  const r24h = ((h << 24) | (l >>> 8)) >>> 0;
  const r24l = ((l << 24) | (h >>> 8)) >>> 0;
  h = (h ^ r49h ^ r24h) >>> 0;
  l = (l ^ r49l ^ r24l) >>> 0;
  mul64(h, l, PMX2H, PMX2L);
  h = R[0];
  l = R[1];
  // h ^= (h >> 35) + n
  const s = (h >>> 3) + n;
  l = (l ^ (s >>> 0)) >>> 0;
  h = (h ^ ((s * INV32) | 0)) >>> 0;
  mul64(h, l, PMX2H, PMX2L);
  R[1] = (R[1] ^ ((R[1] >>> 28) | (R[0] << 4))) >>> 0; // h ^= h >> 28
  R[0] = (R[0] ^ (R[0] >>> 28)) >>> 0;
}


function accAdd(h, l) {
  const s = R[3] + l;
  R[3] = s >>> 0;
  R[2] = (R[2] + h + (s >= TWO32 ? 1 : 0)) >>> 0;
}

/** acc += mix of 16 input bytes at off with 16 secret bytes at so. */
function mix16(b, off, so) {
  mulFold(
    (rd32(b, off + 4) ^ sec32(so + 4)) >>> 0, (rd32(b, off) ^ sec32(so)) >>> 0,
    (rd32(b, off + 12) ^ sec32(so + 12)) >>> 0, (rd32(b, off + 8) ^ sec32(so + 8)) >>> 0,
  );
  accAdd(R[0], R[1]);
}

const ACC = new Uint32Array(16); // the long path's 8 accumulators as (hi, lo) pairs

function accumulate512(b, off, so) {
  for (let i = 0; i < 8; i++) {
    const vL = rd32(b, off + 8 * i);
    const vH = rd32(b, off + 8 * i + 4);
    const kL = (vL ^ sec32(so + 8 * i)) >>> 0;
    const kH = (vH ^ sec32(so + 8 * i + 4)) >>> 0;
    let j = 2 * (i ^ 1); // acc[i ^ 1] += v
    let s = ACC[j + 1] + vL;
    ACC[j + 1] = s >>> 0;
    ACC[j] = ACC[j] + vH + (s >= TWO32 ? 1 : 0);
    mul32(kL, kH); // acc[i] += lo32(k) * hi32(k)
    j = 2 * i;
    s = ACC[j + 1] + R[1];
    ACC[j + 1] = s >>> 0;
    ACC[j] = ACC[j] + R[0] + (s >= TWO32 ? 1 : 0);
  }
}

function scramble() {
  for (let i = 0; i < 8; i++) {
    let h = ACC[2 * i];
    let l = ACC[2 * i + 1];
    l = (l ^ (h >>> 15)) >>> 0; // a ^= a >> 47
    h = (h ^ sec32(128 + 8 * i + 4)) >>> 0;
    l = (l ^ sec32(128 + 8 * i)) >>> 0;
    mul64(h, l, 0, P32_1);
    ACC[2 * i] = R[0];
    ACC[2 * i + 1] = R[1];
  }
}

function hashLong(b, n) {
  ACC.set([0, P32_3, P64_1H, P64_1L, P64_2H, P64_2L, P64_3H, P64_3L, P64_4H, P64_4L, 0, P32_2, P64_5H, P64_5L, 0, P32_1]);
  const blockLen = 64 * 16;
  const blocks = Math.floor((n - 1) / blockLen);
  for (let blk = 0; blk < blocks; blk++) {
    for (let s = 0; s < 16; s++) accumulate512(b, blk * blockLen + s * 64, s * 8);
    scramble();
  }
  const stripes = Math.floor((n - 1 - blocks * blockLen) / 64);
  for (let s = 0; s < stripes; s++) accumulate512(b, blocks * blockLen + s * 64, s * 8);
  accumulate512(b, n - 64, 192 - 64 - 7);
  mul64(0, n, P64_1H, P64_1L);
  R[2] = R[0];
  R[3] = R[1];
  for (let i = 0; i < 4; i++) {
    mulFold(
      (ACC[4 * i] ^ sec32(11 + 16 * i + 4)) >>> 0, (ACC[4 * i + 1] ^ sec32(11 + 16 * i)) >>> 0,
      (ACC[4 * i + 2] ^ sec32(11 + 16 * i + 12)) >>> 0, (ACC[4 * i + 3] ^ sec32(11 + 16 * i + 8)) >>> 0,
    );
    accAdd(R[0], R[1]);
  }
  avalanche(R[2], R[3]);
}

/** Sets R[0]:R[1] to XXH3-64 (seed 0) of the first n bytes of b (a Uint8Array). */
function hash(b, n) {
  if (n === 0) {
    xxh64Avalanche((sec32(60) ^ sec32(68)) >>> 0, (sec32(56) ^ sec32(64)) >>> 0);
  } else if (n <= 3) {
    const combined = ((b[0] << 16) | (b[n >> 1] << 24) | b[n - 1] | (n << 8)) >>> 0;
    xxh64Avalanche(0, (combined ^ sec32(0) ^ sec32(4)) >>> 0);
  } else if (n <= 8) {
    // (in1 << 32 | in2) ^ (secret[8..16] ^ secret[16..24])
    rrmxmx((rd32(b, 0) ^ sec32(12) ^ sec32(20)) >>> 0, (rd32(b, n - 4) ^ sec32(8) ^ sec32(16)) >>> 0, n);
  } else if (n <= 16) {
    const loH = (rd32(b, 4) ^ sec32(28) ^ sec32(36)) >>> 0;
    const loL = (rd32(b, 0) ^ sec32(24) ^ sec32(32)) >>> 0;
    const hiH = (rd32(b, n - 4) ^ sec32(44) ^ sec32(52)) >>> 0;
    const hiL = (rd32(b, n - 8) ^ sec32(40) ^ sec32(48)) >>> 0;
    R[2] = 0;
    R[3] = n;
    accAdd(bswap32(loL), bswap32(loH));
    accAdd(hiH, hiL);
    mulFold(loH, loL, hiH, hiL);
    accAdd(R[0], R[1]);
    avalanche(R[2], R[3]);
  } else if (n <= 128) {
    mul64(0, n, P64_1H, P64_1L);
    R[2] = R[0];
    R[3] = R[1];
    if (n > 32) {
      if (n > 64) {
        if (n > 96) {
          mix16(b, 48, 96);
          mix16(b, n - 64, 112);
        }
        mix16(b, 32, 64);
        mix16(b, n - 48, 80);
      }
      mix16(b, 16, 32);
      mix16(b, n - 32, 48);
    }
    mix16(b, 0, 0);
    mix16(b, n - 16, 16);
    avalanche(R[2], R[3]);
  } else if (n <= 240) {
    mul64(0, n, P64_1H, P64_1L);
    R[2] = R[0];
    R[3] = R[1];
    for (let i = 0; i < 8; i++) mix16(b, 16 * i, 16 * i);
    avalanche(R[2], R[3]);
    R[2] = R[0];
    R[3] = R[1];
    const rounds = n >> 4;
    for (let i = 8; i < rounds; i++) mix16(b, 16 * i, 16 * (i - 8) + 3);
    mix16(b, n - 16, 136 - 17);
    avalanche(R[2], R[3]);
  } else {
    hashLong(b, n);
  }
}

/** XXH3-64 of the first n bytes of b, as a BigInt. */
export function xxh3Bytes(b, n = b.length) {
  hash(b, n);
  return (BigInt(R[0]) << 32n) | BigInt(R[1]);
}

/** The low 32 bits of XXH3-64 of the first n bytes of b (enough for any slot space). */
export function xxh3Low32(b, n = b.length) {
  hash(b, n);
  return R[1];
}
