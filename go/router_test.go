package shardz

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const hashState = `{"namespace":"kv","revision":7,"sharder":"hash","slots":64,
 "nodes":[{"id":"w1","address":"h1:1","zone":"a","state":"alive"},{"id":"w2","address":"h2:2","zone":"b","state":"suspect"}],
 "partitions":[
  {"id":"p1","generation":3,"slots":[[0,32]],"replicas":[
    {"node":"w2","slot":1,"role":"secondary","state":"serving","generation":3},
    {"node":"w1","address":"h1:1","slot":0,"role":"primary","state":"serving","generation":2}]},
  {"id":"p0","generation":1,"slots":[[32,48],[56,64]],"replicas":[
    {"node":"w1","slot":0,"role":"none","state":"adding"}]}]}`

func TestSnapshotHash(t *testing.T) {
	s, err := SnapshotFromState([]byte(hashState), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := s.LookupPartition("p1")
	if err != nil || p1.Target != 0 || p1.Replicas[0].Role != "primary" || p1.Replicas[1].Address != "h2:2" ||
		p1.Replicas[1].NodeState != "suspect" || p1.Replicas[0].Generation != 2 {
		t.Fatalf("p1 %+v %v", p1, err)
	}
	p0, _ := s.LookupPartition("p0")
	if p0.Target != -1 || p0.TargetReplica() != nil || p0.Replicas[0].Generation != 1 {
		t.Fatalf("p0 (only adding) %+v", p0)
	}
	if s.Partitions()[0].Partition != "p0" {
		t.Fatal("partitions not in id order")
	}
	// every key lands where its slot's run says; slots 48-55 are held by nobody
	seenMissing := false
	for i := 0; i < 2000; i++ {
		key := fmt.Sprintf("user:%d", i)
		slot := KeySlot(key, 64)
		r, got, err := s.LookupKey(key)
		if got != slot {
			t.Fatalf("%s: slot %d, want %d", key, got, slot)
		}
		switch {
		case slot < 32:
			if err != nil || r.Partition != "p1" {
				t.Fatalf("%s (slot %d): %v %v", key, slot, r, err)
			}
		case slot >= 48 && slot < 56:
			seenMissing = true
			if err != ErrNotFound {
				t.Fatalf("%s (slot %d) held by nobody: %v", key, slot, err)
			}
		default:
			if err != nil || r.Partition != "p0" {
				t.Fatalf("%s (slot %d): %v %v", key, slot, r, err)
			}
		}
	}
	if !seenMissing {
		t.Fatal("no key fell on an unheld slot")
	}
}

func TestSnapshotRange(t *testing.T) {
	state := `{"revision":4,"sharder":"range","partitions":[
	 {"id":"r2","range":{"lo":"m","hi":null},"replicas":[]},
	 {"id":"r0","range":{"lo":"","hi":"g"},"replicas":[]},
	 {"id":"r1","range":{"lo":"g","hi":"m"},"replicas":[]},
	 {"id":"r3","range":{"lo":"g","hi":"j"},"routed":false,"replicas":[]}]}`
	s, err := SnapshotFromState([]byte(state), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"": "r0", "a": "r0", "f\xff": "r0", "g": "r1", "h": "r1",
		"lzz": "r1", "m": "r2", "zzz": "r2", "\xff": "r2"} {
		r, _, err := s.LookupKey(key)
		if err != nil || r.Partition != want {
			t.Errorf("%q: %v %v, want %s", key, r, err, want)
		}
	}
	// a gap, or no +infinity, refuses the whole state
	for _, bad := range []string{
		`{"revision":1,"sharder":"range","partitions":[{"id":"a","range":{"lo":"","hi":"g"}},{"id":"b","range":{"lo":"h","hi":null}}]}`,
		`{"revision":1,"sharder":"range","partitions":[{"id":"a","range":{"lo":"","hi":"g"}}]}`,
		`{"revision":1,"sharder":"hash","slots":64,"partitions":[{"id":"a","slots":[[0,40]]},{"id":"b","slots":[[30,64]]}]}`,
		`{"revision":1,"sharder":"hash","slots":60,"partitions":[]}`,
		`{"sharder":"hash","slots":64,"partitions":[]}`,
	} {
		if _, err := SnapshotFromState([]byte(bad), "", 0); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, _, err := (&Snapshot{Sharder: "replica"}).LookupKey("k"); err != ErrNotSupported {
		t.Fatal("a key lookup in a replica namespace")
	}
}

// The router reads the namespace and /state, then follows /watch; lookups go on meanwhile.
func TestRouterFollowsWatch(t *testing.T) {
	var mu sync.Mutex
	rev := 7
	next := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/namespaces/kv":
			fmt.Fprint(w, `{"name":"kv","sharder":"hash","slots":64}`)
		case r.URL.Path == "/v1/namespaces/kv/state":
			fmt.Fprint(w, hashState)
		case r.URL.Path == "/v1/namespaces/kv/watch":
			select {
			case <-next:
				mu.Lock()
				rev++
				body := strings.Replace(hashState, `"revision":7`, fmt.Sprintf(`"revision":%d`, rev), 1)
				body = strings.Replace(body, `"id":"p0","generation":1`, `"id":"p0","generation":9`, 1)
				mu.Unlock()
				fmt.Fprint(w, body)
			case <-time.After(200 * time.Millisecond):
				fmt.Fprintf(w, `{"revision":%s,"unchanged":true}`, r.URL.Query().Get("revision"))
			}
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	r, err := NewRouter(RouterConfig{Coordinators: []string{strings.TrimPrefix(srv.URL, "http://")},
		Namespace: "kv", WatchTimeout: time.Second, Logf: func(string, ...interface{}) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.LookupPartition("p0"); p.Generation != 1 || r.Snapshot().Revision != 7 {
		t.Fatalf("first state %+v", p)
	}
	stop := make(chan struct{})
	go func() { // lookups while snapshots are swapped
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := r.LookupKey("user:1"); err != nil && err != ErrNotFound {
				panic(err)
			}
		}
	}()
	next <- struct{}{}
	if err := r.WaitRevision(ctx, 8); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if p, _ := r.LookupPartition("p0"); p.Generation != 9 {
		t.Fatalf("watched state not installed: %+v", p)
	}
}
