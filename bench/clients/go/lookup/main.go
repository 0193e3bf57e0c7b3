// The Go module's router key lookup, for bench/clients/run.py (bench/clients/lookup_go builds and
// runs it): builds a Snapshot from a /state body, installs it in a Router, checks each key's
// slot, then times ROUNDS passes of Router.LookupKey over the keys. Prints one JSON line like the
// other lookup_<lang> programs.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"shardz"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: lookup_go STATE_JSON KEYS_FILE ROUNDS")
		os.Exit(2)
	}
	state, err := os.ReadFile(os.Args[1])
	check(err)
	raw, err := os.ReadFile(os.Args[2])
	check(err)
	rounds, err := strconv.Atoi(os.Args[3])
	check(err)
	var keys []string
	for _, k := range bytes.Split(raw, []byte("\n")) {
		if len(k) > 0 {
			keys = append(keys, string(k))
		}
	}
	snap, err := shardz.SnapshotFromState(state, "", 0)
	check(err)
	r, err := shardz.NewRouter(shardz.RouterConfig{Coordinators: []string{"127.0.0.1:1"}, Namespace: "bench"})
	check(err)
	r.Install(snap) // no coordinator: the router is fed directly
	checksum := 0
	for _, k := range keys {
		route, slot, err := snap.LookupKey(k)
		if err != nil || route == nil || slot != shardz.KeySlot(k, snap.Slots) {
			check(fmt.Errorf("key %q: %v", k, err))
		}
		checksum += int(slot)
	}
	var sink int
	t0 := time.Now()
	for i := 0; i < rounds; i++ {
		for _, k := range keys {
			route, _ := r.LookupKey(k)
			sink += route.Target
		}
	}
	dt := time.Since(t0)
	n := rounds * len(keys)
	last, _ := r.LookupKey(keys[len(keys)-1])
	out, _ := json.Marshal(map[string]interface{}{"lang": "go", "lookups": n,
		"ns_per_lookup": float64(int(float64(dt.Nanoseconds())/float64(n)*10)) / 10,
		"checksum":      checksum, "last": last.Partition, "sink": sink})
	fmt.Println(string(out))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "lookup_go:", err)
		os.Exit(1)
	}
}
