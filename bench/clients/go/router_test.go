// Router key lookups in the Go module (go/router.go), on the synthetic state bench/bench_router.c
// builds (1024 partitions x 3 replicas on 100 nodes, 16384 slots in contiguous runs, 100,000
// distinct keys "user:<n>"): hashing alone, a snapshot lookup, the router's lookup (an atomic
// pointer load first), by partition id, on every core at once, and with a new snapshot installed
// every 10 ms. Run by bench/clients/run.sh:
//
//	cd bench/clients/go && go test -run XXX -bench . -benchtime 20000000x
package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shardz"
)

const (
	bParts    = 1024
	bReplicas = 3
	bNodes    = 100
	bSlots    = 16384
	bKeys     = 100000
)

// benchState is the synthetic state: partition i holds slots [i*S/P, (i+1)*S/P).
func benchState(revision int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"revision":%d,"slots":%d,"sharder":"hash","nodes":[`, revision, bSlots)
	for i := 0; i < bNodes; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"n%05d","address":"10.0.%d.%d:9100","state":"alive"}`, i, i/250, i%250)
	}
	b.WriteString(`],"partitions":[`)
	for i := 0; i < bParts; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		lo, hi := i*bSlots/bParts, (i+1)*bSlots/bParts
		fmt.Fprintf(&b, `{"id":"p%06d","generation":%d,"slots":[[%d,%d]],"replicas":[`, i, revision, lo, hi)
		for r := 0; r < bReplicas; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			role := "secondary"
			if r == 0 {
				role = "primary"
			}
			fmt.Fprintf(&b, `{"node":"n%05d","slot":%d,"role":%q,"state":"serving"}`, (i+r)%bNodes, r, role)
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	return []byte(b.String())
}

var keys = func() []string {
	k := make([]string, bKeys)
	for i := range k {
		k[i] = fmt.Sprintf("user:%d", i)
	}
	return k
}()

func TestMain(m *testing.M) {
	fmt.Printf("cores: %d (GOMAXPROCS %d), %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	os.Exit(m.Run())
}

func newSnap(b *testing.B) *shardz.Snapshot {
	s, err := shardz.SnapshotFromState(benchState(1), "", 0)
	if err != nil {
		b.Fatal(err)
	}
	// every key where its slot's run says
	for _, k := range keys[:1000] {
		r, slot, err := s.LookupKey(k)
		if err != nil || slot != shardz.KeySlot(k, bSlots) || r.Partition != fmt.Sprintf("p%06d", int(slot)*bParts/bSlots) {
			b.Fatalf("%s: %v %d %v", k, r, slot, err)
		}
	}
	return s
}

var sink uintptr

func BenchmarkKeySlot(b *testing.B) {
	var x uint32
	for i, j := 0, 0; i < b.N; i++ {
		x += shardz.KeySlot(keys[j], bSlots)
		if j++; j == bKeys {
			j = 0
		}
	}
	sink += uintptr(x)
}

func BenchmarkSnapshotLookupKey(b *testing.B) {
	s := newSnap(b)
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i++ {
		r, _, _ := s.LookupKey(keys[j])
		sink += uintptr(r.Target)
		if j++; j == bKeys {
			j = 0
		}
	}
}

func newRouter(b *testing.B) *shardz.Router {
	r, err := shardz.NewRouter(shardz.RouterConfig{Coordinators: []string{"127.0.0.1:1"}, Namespace: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	r.Install(newSnap(b)) // no coordinator: the router is fed directly
	return r
}

func BenchmarkRouterLookupKey(b *testing.B) {
	r := newRouter(b)
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i++ {
		rt, _ := r.LookupKey(keys[j])
		sink += uintptr(rt.Target)
		if j++; j == bKeys {
			j = 0
		}
	}
}

func BenchmarkRouterLookupPartition(b *testing.B) {
	r := newRouter(b)
	ids := make([]string, bParts)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%06d", i)
	}
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i++ {
		rt, _ := r.LookupPartition(ids[j])
		sink += uintptr(rt.Target)
		if j++; j == bParts {
			j = 0
		}
	}
}

// Every core at once (ns/op is wall time per lookup over all goroutines: multiply by the core
// count for the time one lookup takes on one core).
func BenchmarkRouterLookupKeyParallel(b *testing.B) {
	r := newRouter(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local uintptr
		for j := 0; pb.Next(); {
			rt, _ := r.LookupKey(keys[j])
			local += uintptr(rt.Target)
			if j++; j == bKeys {
				j = 0
			}
		}
		atomic.AddUintptr(&sink, local)
	})
}

// As above while a new snapshot is installed every 10 ms.
func BenchmarkRouterLookupKeyParallelSwapping(b *testing.B) {
	r := newRouter(b)
	snaps := []*shardz.Snapshot{newSnap(b), newSnap(b)}
	stop := make(chan struct{})
	swaps := 0
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.Install(snaps[swaps%2])
				swaps++
			}
		}
	}()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local uintptr
		for j := 0; pb.Next(); {
			rt, _ := r.LookupKey(keys[j])
			local += uintptr(rt.Target)
			if j++; j == bKeys {
				j = 0
			}
		}
		atomic.AddUintptr(&sink, local)
	})
	b.StopTimer()
	close(stop)
}

func BenchmarkSnapshotBuild(b *testing.B) {
	state := benchState(1)
	b.SetBytes(int64(len(state)))
	for i := 0; i < b.N; i++ {
		if _, err := shardz.SnapshotFromState(state, "", 0); err != nil {
			b.Fatal(err)
		}
	}
}
