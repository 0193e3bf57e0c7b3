package shardz

// The client, the worker and the router against a real shardzd (its path in SHARDZ_SHARDZD,
// which the ctest entry go/unit sets; SHARDZ_REQUIRE_SHARDZD=1 there makes its absence a
// failure): namespaces, nodes, drain and undrain, a move, partitions, status, errors, and router
// lookups that agree with the coordinator's own /lookup.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func startShardzd(t *testing.T) string {
	bin := os.Getenv("SHARDZ_SHARDZD")
	if bin == "" {
		if os.Getenv("SHARDZ_REQUIRE_SHARDZD") != "" {
			t.Fatal("SHARDZ_SHARDZD is not set")
		}
		t.Skip("SHARDZ_SHARDZD not set (the ctest entry go/unit sets it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	log, _ := os.Create(dir + "/shardzd.log")
	cmd := exec.Command(bin, "--listen", addr, "--data", dir+"/data")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(dir + "/shardzd.log")
			t.Logf("shardzd log:\n%s", b)
		}
	})
	waitUntil(t, 15*time.Second, "shardzd ready", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return addr
}

// waitUntil polls cond until it holds or the deadline passes (then the test fails).
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestAgainstShardzd(t *testing.T) {
	addr := startShardzd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := NewClient(ClientConfig{Coordinators: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.CreateNamespace(ctx, NamespaceConfig{Name: "kv", Sharder: "hash", Partitions: 8,
		PingIntervalMs: 50, DeadAfterMs: 400, Slots: 1024})
	if err != nil || ns.Name != "kv" || ns.Sharder != "hash" {
		t.Fatalf("create: %+v %v", ns, err)
	}
	_, err = c.CreateNamespace(ctx, NamespaceConfig{Name: "kv"})
	var api *APIError
	if !errors.As(err, &api) || api.Status != 409 || api.Code != "EEXIST" {
		t.Fatalf("second create: %v", err)
	}
	if _, err := c.Namespace(ctx, "nope"); !errors.As(err, &api) || api.Status != 404 || api.Code != "ENOENT" {
		t.Fatalf("unknown namespace: %v", err)
	}
	if all, err := c.Namespaces(ctx); err != nil || len(all) != 1 || all[0].Name != "kv" {
		t.Fatalf("list: %+v %v", all, err)
	}
	if st, err := c.Status(ctx); err != nil || st.Role != "leader" || st.Namespaces != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}

	served := map[string]map[string]bool{"w1": {}, "w2": {}}
	var mu = make(chan struct{}, 1)
	lock := func() func() { mu <- struct{}{}; return func() { <-mu } }
	for _, id := range []string{"w1", "w2"} {
		id := id
		w, err := NewServer(ServerConfig{Coordinators: []string{addr}, Namespace: "kv", NodeID: id,
			Listen: "127.0.0.1:0", Zone: "z" + id, Logf: func(string, ...interface{}) {},
			ServeFn:  func(r Replica) error { defer lock()(); served[id][r.Partition] = true; return nil },
			DeleteFn: func(r Replica) error { defer lock()(); delete(served[id], r.Partition); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		defer w.Close()
	}
	count := func(id string) int { defer lock()(); return len(served[id]) }
	waitUntil(t, 20*time.Second, "both workers serve 4", func() bool { return count("w1") == 4 && count("w2") == 4 })
	nodes, rev, err := c.Nodes(ctx, "kv")
	if err != nil || len(nodes) != 2 || rev <= 0 {
		t.Fatalf("nodes: %+v %d %v", nodes, rev, err)
	}
	for _, n := range nodes { // in no particular order
		if n.State != "alive" || n.Zone != "z"+n.ID || n.Replicas != 4 {
			t.Fatalf("node %+v", n)
		}
	}

	// the router agrees with the coordinator's own /lookup
	r, err := NewRouter(RouterConfig{Coordinators: []string{addr}, Namespace: "kv", Logf: func(string, ...interface{}) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		key := fmt.Sprintf("{user%d}:x", i)
		var want struct {
			Slot      uint32 `json:"slot"`
			Partition string `json:"partition"`
		}
		if err := c.Do(ctx, "GET", "/v1/namespaces/kv/lookup?key="+strings.NewReplacer("{", "%7B", "}", "%7D", ":", "%3A").Replace(key), nil, &want); err != nil {
			t.Fatal(err)
		}
		route, slot, err := r.Snapshot().LookupKey(key)
		if err != nil || route.Partition != want.Partition || slot != want.Slot {
			t.Fatalf("%s: router %v slot %d, coordinator %+v", key, route, slot, want)
		}
	}

	// drain w1: everything moves to w2; the router follows; undrain gives w1 its share back
	if n, err := c.Drain(ctx, "kv", "w1"); err != nil || !n.Drained && n.State != "draining" {
		t.Fatalf("drain: %+v %v", n, err)
	}
	waitUntil(t, 20*time.Second, "w1 drained", func() bool { return count("w1") == 0 && count("w2") == 8 })
	waitUntil(t, 10*time.Second, "the router sees the drain", func() bool {
		for _, p := range r.Snapshot().Partitions() {
			if t := p.TargetReplica(); t == nil || t.Node != "w2" {
				return false
			}
		}
		return true
	})
	if _, err := c.Undrain(ctx, "kv", "w1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "w1 back", func() bool { return count("w1") == 4 && count("w2") == 4 })

	// an operator move of one partition to the other node
	w1, err := c.Node(ctx, "kv", "w1")
	if err != nil || len(w1.Partitions) != 4 {
		t.Fatalf("node w1: %+v %v", w1, err)
	}
	pid := w1.Partitions[0].Partition
	if p, err := c.Move(ctx, "kv", pid, 0, "w2"); err != nil || p.Partition != pid {
		t.Fatalf("move: %+v %v", p, err)
	}
	waitUntil(t, 20*time.Second, "the move", func() bool {
		p, err := c.Partition(ctx, "kv", pid)
		return err == nil && len(p.Replicas) == 1 && p.Replicas[0].Node == "w2" && p.Replicas[0].State == "serving"
	})
	if _, err := c.Move(ctx, "kv", pid, 0, "nobody"); !errors.As(err, &api) || api.Status != 404 {
		t.Fatalf("move to an unknown node: %v", err)
	}
	// (PROTOCOL.md says workers are told to delete everything when their namespace is deleted;
	// shardzd does not do that yet, see szd_ns_delete, so only the coordinator side is checked)
	if err := c.DeleteNamespace(ctx, "kv"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Namespace(ctx, "kv"); !errors.As(err, &api) || api.Status != 404 {
		t.Fatalf("deleted namespace: %v", err)
	}
}
