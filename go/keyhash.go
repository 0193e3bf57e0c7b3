// Key hashing for hash namespaces (docs/PROTOCOL.md section 7): the Redis Cluster hash-tag
// rule, XXH3-64 with seed 0, and the slot as the hash's low bits. Pure and safe for concurrent
// use; the string forms do not copy the key.
package shardz

import (
	"reflect"
	"strings"
	"unsafe"
)

// HashTag returns the bytes of key that are hashed: those between the first '{' and the first
// '}' after it when that is not empty, otherwise the whole key.
func HashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	close := strings.IndexByte(key[open+1:], '}')
	if close <= 0 {
		return key
	}
	return key[open+1 : open+1+close]
}

// KeyHash is XXH3-64 (seed 0) of key's hash tag.
func KeyHash(key string) uint64 {
	return XXH3(stringBytes(HashTag(key)))
}

// KeySlot is the slot of key in a slot space of slots entries (a power of two).
func KeySlot(key string, slots uint32) uint32 {
	return uint32(KeyHash(key) & uint64(slots-1))
}

// stringBytes views s as bytes without copying; the result must never be written (XXH3 only
// reads). Go 1.19 has no unsafe.StringData, hence the header.
func stringBytes(s string) []byte {
	if len(s) == 0 {
		return nil
	}
	h := (*reflect.StringHeader)(unsafe.Pointer(&s))
	return unsafe.Slice((*byte)(unsafe.Pointer(h.Data)), len(s))
}
