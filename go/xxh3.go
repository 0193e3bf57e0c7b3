// XXH3-64 (xxHash 0.8, seed 0, the default 192-byte secret): the hash docs/PROTOCOL.md
// section 7 routes keys with. Pure and safe for concurrent use: no state, no allocation.
//
// Why it is written here: Go's standard library has no XXH3 and Debian packages no Go module
// for it, and this module uses the standard library only. It follows the published algorithm
// (xxhash.h, XXH3_64bits) and is checked against vectors produced by `xxhsum -H3` and by the C
// library (xxh3_test.go, testdata/xxh3_vectors.txt).
package shardz

import (
	"encoding/binary"
	"math/bits"
)

const (
	prime32_1 = 0x9E3779B1
	prime32_2 = 0x85EBCA77
	prime32_3 = 0xC2B2AE3D
	prime64_1 = 0x9E3779B185EBCA87
	prime64_2 = 0xC2B2AE3D27D4EB4F
	prime64_3 = 0x165667B19E3779F9
	prime64_4 = 0x85EBCA77C2B2AE63
	prime64_5 = 0x27D4EB2F165667C5
	primeMx1  = 0x165667919E3779F9
	primeMx2  = 0x9FB21C651E98DF25

	xxhStripeLen        = 64
	xxhSecretConsume    = 8
	xxhSecretSize       = 192
	xxhSecretSizeMin    = 136
	xxhMidsizeMax       = 240
	xxhMidsizeStart     = 3
	xxhMidsizeLast      = 17
	xxhLastAccStart     = 7
	xxhMergeAccsStart   = 11
	xxhStripesPerBlock  = (xxhSecretSize - xxhStripeLen) / xxhSecretConsume
	xxhBlockLen         = xxhStripeLen * xxhStripesPerBlock
	xxhScrambleSecretAt = xxhSecretSize - xxhStripeLen
)

// xxhSecret is XXH3's default secret (xxhash.h, XXH3_kSecret).
var xxhSecret = [xxhSecretSize]byte{
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
}

func rd64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
func rd32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func sec64(off int) uint64          { return binary.LittleEndian.Uint64(xxhSecret[off:]) }

func mulFold64(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func xxh64Avalanche(h uint64) uint64 {
	h ^= h >> 33
	h *= prime64_2
	h ^= h >> 29
	h *= prime64_3
	return h ^ h>>32
}

func xxh3Avalanche(h uint64) uint64 {
	h ^= h >> 37
	h *= primeMx1
	return h ^ h>>32
}

func xxh3Rrmxmx(h uint64, n uint64) uint64 {
	h ^= bits.RotateLeft64(h, 49) ^ bits.RotateLeft64(h, 24)
	h *= primeMx2
	h ^= (h >> 35) + n
	h *= primeMx2
	return h ^ h>>28
}

func xxh3Mix16(b []byte, off int, secOff int) uint64 {
	return mulFold64(rd64(b, off)^sec64(secOff), rd64(b, off+8)^sec64(secOff+8))
}

// XXH3 returns XXH3-64 of b with seed 0 (what `xxhsum -H3` prints, in hex).
func XXH3(b []byte) uint64 {
	n := len(b)
	switch {
	case n == 0:
		return xxh64Avalanche(sec64(56) ^ sec64(64))
	case n <= 3:
		c1, c2, c3 := uint32(b[0]), uint32(b[n>>1]), uint32(b[n-1])
		combined := c1<<16 | c2<<24 | c3 | uint32(n)<<8
		flip := uint64(binary.LittleEndian.Uint32(xxhSecret[0:]) ^ binary.LittleEndian.Uint32(xxhSecret[4:]))
		return xxh64Avalanche(uint64(combined) ^ flip)
	case n <= 8:
		in1, in2 := rd32(b, 0), rd32(b, n-4)
		flip := sec64(8) ^ sec64(16)
		in64 := uint64(in2) + uint64(in1)<<32
		return xxh3Rrmxmx(in64^flip, uint64(n))
	case n <= 16:
		lo := rd64(b, 0) ^ (sec64(24) ^ sec64(32))
		hi := rd64(b, n-8) ^ (sec64(40) ^ sec64(48))
		acc := uint64(n) + bits.ReverseBytes64(lo) + hi + mulFold64(lo, hi)
		return xxh3Avalanche(acc)
	case n <= 128:
		acc := uint64(n) * prime64_1
		if n > 32 {
			if n > 64 {
				if n > 96 {
					acc += xxh3Mix16(b, 48, 96)
					acc += xxh3Mix16(b, n-64, 112)
				}
				acc += xxh3Mix16(b, 32, 64)
				acc += xxh3Mix16(b, n-48, 80)
			}
			acc += xxh3Mix16(b, 16, 32)
			acc += xxh3Mix16(b, n-32, 48)
		}
		acc += xxh3Mix16(b, 0, 0)
		acc += xxh3Mix16(b, n-16, 16)
		return xxh3Avalanche(acc)
	case n <= xxhMidsizeMax:
		acc := uint64(n) * prime64_1
		for i := 0; i < 8; i++ {
			acc += xxh3Mix16(b, 16*i, 16*i)
		}
		acc = xxh3Avalanche(acc)
		for i := 8; i < n/16; i++ {
			acc += xxh3Mix16(b, 16*i, 16*(i-8)+xxhMidsizeStart)
		}
		acc += xxh3Mix16(b, n-16, xxhSecretSizeMin-xxhMidsizeLast)
		return xxh3Avalanche(acc)
	default:
		return xxh3Long(b)
	}
}

func xxh3Accumulate512(acc *[8]uint64, b []byte, off int, secOff int) {
	for i := 0; i < 8; i++ {
		v := rd64(b, off+8*i)
		k := v ^ sec64(secOff+8*i)
		acc[i^1] += v
		acc[i] += uint64(uint32(k)) * (k >> 32)
	}
}

func xxh3Scramble(acc *[8]uint64) {
	for i := 0; i < 8; i++ {
		a := acc[i]
		a ^= a >> 47
		a ^= sec64(xxhScrambleSecretAt + 8*i)
		acc[i] = a * prime32_1
	}
}

func xxh3Long(b []byte) uint64 {
	n := len(b)
	acc := [8]uint64{prime32_3, prime64_1, prime64_2, prime64_3, prime64_4, prime32_2, prime64_5,
		prime32_1}
	blocks := (n - 1) / xxhBlockLen
	for blk := 0; blk < blocks; blk++ {
		for s := 0; s < xxhStripesPerBlock; s++ {
			xxh3Accumulate512(&acc, b, blk*xxhBlockLen+s*xxhStripeLen, s*xxhSecretConsume)
		}
		xxh3Scramble(&acc)
	}
	stripes := ((n - 1) - blocks*xxhBlockLen) / xxhStripeLen
	for s := 0; s < stripes; s++ {
		xxh3Accumulate512(&acc, b, blocks*xxhBlockLen+s*xxhStripeLen, s*xxhSecretConsume)
	}
	xxh3Accumulate512(&acc, b, n-xxhStripeLen, xxhSecretSize-xxhStripeLen-xxhLastAccStart)
	res := uint64(n) * prime64_1
	for i := 0; i < 4; i++ {
		res += mulFold64(acc[2*i]^sec64(xxhMergeAccsStart+16*i),
			acc[2*i+1]^sec64(xxhMergeAccsStart+16*i+8))
	}
	return xxh3Avalanche(res)
}
