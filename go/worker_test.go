package shardz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCoord is an in-memory coordinator for unit tests: it answers registration and leave,
// and records what it was sent.
type fakeCoord struct {
	t           *testing.T
	srv         *httptest.Server
	mu          sync.Mutex
	registers   []map[string]interface{}
	leaves      int
	consistency string
	leaveStatus int
	features    string // the register reply's features (default ["delta"])
}

func newFakeCoord(t *testing.T, consistency string) *fakeCoord {
	f := &fakeCoord{t: t, consistency: consistency, leaveStatus: 202}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/namespaces/kv/nodes":
			var m map[string]interface{}
			_ = json.Unmarshal(body, &m)
			f.registers = append(f.registers, m)
			feats := f.features
			if feats == "" {
				feats = `["delta"]`
			}
			fmt.Fprintf(w, `{"node":{"id":"w1"},"ping_interval_ms":50,"lease_ms":1000,"consistency":%q,"revision":3,"features":%s}`, f.consistency, feats)
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/leave"):
			f.leaves++
			w.WriteHeader(f.leaveStatus)
			if f.leaveStatus == 404 {
				fmt.Fprint(w, `{"code":"ENOENT","message":"no node w1"}`)
			} else {
				fmt.Fprint(w, `{}`)
			}
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"code":"ENOENT","message":"no route"}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCoord) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// hookLog records hook calls.
type hookLog struct {
	mu    sync.Mutex
	calls []string
	ch    chan string
	fail  map[string]bool
	block chan struct{} // when set, ServeFn waits on it
}

func newHookLog() *hookLog { return &hookLog{ch: make(chan string, 100), fail: map[string]bool{}} }

func (h *hookLog) serve(r Replica) error {
	if h.block != nil {
		h.ch <- "blocked:" + r.Partition
		<-h.block
	}
	s := fmt.Sprintf("serve %s g%d %s", r.Partition, r.Generation, r.Role)
	if r.Update {
		s += fmt.Sprintf(" update(g%d)", r.OldGeneration)
	}
	if r.HasRange {
		hi := "+inf"
		if r.RangeHi != nil {
			hi = *r.RangeHi
		}
		s += fmt.Sprintf(" [%q,%s)", r.RangeLo, hi)
	}
	h.record(s)
	if h.fail[r.Partition] {
		return fmt.Errorf("disk full")
	}
	return nil
}

func (h *hookLog) del(r Replica) error {
	h.record(fmt.Sprintf("delete %s %s", r.Partition, r.Cause))
	return nil
}

func (h *hookLog) record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
	h.ch <- s
}

func (h *hookLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = nil
	for len(h.ch) > 0 {
		<-h.ch
	}
	return c
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startWorker(t *testing.T, f *fakeCoord, h *hookLog, mod func(*ServerConfig)) *Server {
	cfg := ServerConfig{Coordinators: []string{f.addr()}, Namespace: "kv", NodeID: "w1",
		Listen: "127.0.0.1:0", Zone: "a", Capacity: map[string]float64{"cpu": 8},
		ServeFn: h.serve, DeleteFn: h.del, Logf: func(string, ...interface{}) {}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func post(t *testing.T, s *Server, path, body string) (int, map[string]interface{}) {
	t.Helper()
	resp, err := http.Post("http://"+s.Addr()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("reply %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, m
}

func assignBody(rev int64, extra string, reps ...string) string {
	return fmt.Sprintf(`{"namespace":"kv","node":"w1","revision":%d%s,"replicas":[%s]}`, rev, extra,
		strings.Join(reps, ","))
}

func rep(pid string, gen int64, role string) string {
	return fmt.Sprintf(`{"partition":%q,"slot":0,"role":%q,"generation":%d,"state":"serving"}`, pid, role, gen)
}

func jsonStr(v interface{}) string { b, _ := json.Marshal(v); return string(b) }

func TestWorkerRegisterAndAssign(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	s := startWorker(t, f, h, nil)
	f.mu.Lock()
	reg := f.registers[0]
	f.mu.Unlock()
	if reg["id"] != "w1" || reg["address"] != s.Addr() || reg["zone"] != "a" ||
		jsonStr(reg["capacity"]) != `{"cpu":8}` || jsonStr(reg["features"]) != `["delta","term","transfer"]` {
		t.Fatalf("register body %v", reg)
	}

	// a full set: serves in partition id order
	st, m := post(t, s, "/shardz/v1/assign", assignBody(10, "", rep("p2", 4, "primary"), rep("p1", 2, "none")))
	if st != 200 || m["applied_revision"].(float64) != 10 ||
		jsonStr(m["serving"]) != `[{"generation":2,"partition":"p1"},{"generation":4,"partition":"p2"}]` {
		t.Fatalf("full assign: %d %v", st, m)
	}
	if got := strings.Join(h.take(), "; "); got != "serve p1 g2 none; serve p2 g4 primary" {
		t.Fatalf("hooks: %s", got)
	}
	// a full set without p1, with p2's generation raised and p3 new: delete first, then serves
	st, m = post(t, s, "/shardz/v1/assign", assignBody(11, "", rep("p2", 5, "primary"), rep("p3", 1, "none")))
	if st != 200 || m["applied_revision"].(float64) != 11 {
		t.Fatalf("second assign: %d %v", st, m)
	}
	if got := strings.Join(h.take(), "; "); got != "delete p1 assign; serve p2 g5 primary update(g4); serve p3 g1 none" {
		t.Fatalf("hooks: %s", got)
	}
	// only a state or slot change: no hook
	st, _ = post(t, s, "/shardz/v1/assign", assignBody(12, "",
		`{"partition":"p2","slot":1,"role":"primary","generation":5,"state":"dropping"}`, rep("p3", 1, "none")))
	if got := h.take(); st != 200 || len(got) != 0 {
		t.Fatalf("state-only change called %v", got)
	}
	// a delta on the applied base: removes p3, adds p4 and names only those in its reply
	st, m = post(t, s, "/shardz/v1/assign", assignBody(13, `,"base_revision":12,"removed":["p3"]`, rep("p4", 7, "none")))
	if st != 200 || m["delta"] != true || jsonStr(m["serving"]) != `[{"generation":7,"partition":"p4"}]` {
		t.Fatalf("delta: %d %v", st, m)
	}
	if got := strings.Join(h.take(), "; "); got != "delete p3 assign; serve p4 g7 none" {
		t.Fatalf("hooks: %s", got)
	}
	// a delta on another base: 409 ESTALE with applied_revision, nothing called
	st, m = post(t, s, "/shardz/v1/assign", assignBody(15, `,"base_revision":11`, rep("p5", 1, "none")))
	if st != 409 || m["code"] != "ESTALE" || m["applied_revision"].(float64) != 13 {
		t.Fatalf("delta on a wrong base: %d %v", st, m)
	}
	// a stale full set: ignored, answered with everything served
	st, m = post(t, s, "/shardz/v1/assign", assignBody(5, ""))
	if st != 200 || m["applied_revision"].(float64) != 13 ||
		jsonStr(m["serving"]) != `[{"generation":5,"partition":"p2"},{"generation":7,"partition":"p4"}]` {
		t.Fatalf("stale: %d %v", st, m)
	}
	if got := h.take(); len(got) != 0 {
		t.Fatalf("stale or refused assignments called %v", got)
	}
	// a failed serve is reported and not held
	h.fail["p6"] = true
	st, m = post(t, s, "/shardz/v1/assign", assignBody(16, "", rep("p2", 5, "primary"), rep("p4", 7, "none"), rep("p6", 1, "none")))
	if st != 200 || jsonStr(m["failed"]) != `[{"error":"disk full","partition":"p6"}]` ||
		strings.Contains(jsonStr(m["serving"]), "p6") {
		t.Fatalf("failed serve: %d %v", st, m)
	}
	if s.Status().Serving != 2 || s.Status().Assignments != 5 || s.Status().DeltasRefused != 1 {
		t.Fatalf("status %+v", s.Status())
	}
}

func TestWorkerRangeBounds(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	s := startWorker(t, f, h, nil)
	st, _ := post(t, s, "/shardz/v1/assign", assignBody(4, "",
		`{"partition":"r0","generation":1,"range":{"lo":"","hi":"G"},"routed":false}`,
		`{"partition":"r1","generation":1,"range":{"lo":"G","hi":null}}`))
	if got := strings.Join(h.take(), "; "); st != 200 || got != `serve r0 g1 none ["",G); serve r1 g1 none ["G",+inf)` {
		t.Fatalf("%d hooks: %s", st, got)
	}
}

// A ping is answered while a serve hook is running (the hook goroutine is busy).
func TestWorkerPingNotBlockedByHook(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	h.block = make(chan struct{})
	s := startWorker(t, f, h, nil)
	done := make(chan int, 1)
	go func() {
		st, _ := post(t, s, "/shardz/v1/assign", assignBody(7, "", rep("p1", 1, "none")))
		done <- st
	}()
	select {
	case c := <-h.ch:
		if c != "blocked:p1" {
			t.Fatalf("unexpected %s", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the serve hook never ran")
	}
	st, m := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":7}`)
	if st != 200 || m["applied_revision"].(float64) != 0 {
		t.Fatalf("ping during a hook: %d %v", st, m)
	}
	select {
	case <-done:
		t.Fatal("the assignment was answered before its hook returned")
	default:
	}
	close(h.block)
	if st := <-done; st != 200 {
		t.Fatalf("assign: %d", st)
	}
	_, m = post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":7}`)
	if m["applied_revision"].(float64) != 7 {
		t.Fatalf("after the hook: %v", m)
	}
}

func TestWorkerBadMessages(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	s := startWorker(t, f, h, nil)
	post(t, s, "/shardz/v1/assign", assignBody(3, "", rep("p1", 1, "none")))
	h.take()
	cases := []struct {
		path, body string
		status     int
		code       string
	}{
		{"/shardz/v1/assign", `not json`, 400, "EINVAL"},
		{"/shardz/v1/assign", `[1]`, 400, "EINVAL"},
		{"/shardz/v1/assign", `{"namespace":"kv","node":"w2","revision":9,"replicas":[]}`, 400, "EPROTO"},
		{"/shardz/v1/assign", `{"namespace":"kv","node":"w1","revision":-1,"replicas":[]}`, 400, "EINVAL"},
		{"/shardz/v1/assign", `{"namespace":"kv","node":"w1","revision":9.5,"replicas":[]}`, 400, "EINVAL"},
		{"/shardz/v1/assign", `{"namespace":"kv","node":"w1","revision":9}`, 400, "EINVAL"},
		{"/shardz/v1/assign", assignBody(9, "", `{"partition":"a b","generation":1}`), 400, "EINVAL"},
		{"/shardz/v1/assign", assignBody(9, "", `{"partition":"p9","generation":"1"}`), 400, "EINVAL"},
		{"/shardz/v1/assign", assignBody(9, "", `{"partition":"p9","generation":1,"slot":256}`), 400, "EINVAL"},
		{"/shardz/v1/assign", assignBody(9, "", rep("p9", 1, "none"), rep("p9", 2, "none")), 400, "EPROTO"},
		{"/shardz/v1/assign", assignBody(9, `,"released":true`, rep("p9", 1, "none")), 400, "EPROTO"},
		{"/shardz/v1/assign", assignBody(9, `,"removed":["p1"]`), 400, "EPROTO"},
		{"/shardz/v1/assign", assignBody(9, `,"base_revision":9`), 400, "EINVAL"},
		{"/shardz/v1/assign", assignBody(9, `,"base_revision":3,"removed":["p9"]`, rep("p9", 1, "none")), 400, "EPROTO"},
		{"/shardz/v1/assign", assignBody(9, `,"base_revision":3,"removed":["p1","p1"]`), 400, "EPROTO"},
		{"/shardz/v1/assign", assignBody(9, `,"lease_ms":0`), 400, "EINVAL"},
		{"/shardz/v1/assign", `{"namespace":"kv","node":"w1","revision":9,"revision":10,"replicas":[]}`, 400, "EINVAL"},
		{"/shardz/v1/ping", `{"namespace":"kv","node":"w1"}`, 400, "EINVAL"},
		{"/shardz/v1/ping", `{"namespace":"other","node":"w1","revision":1}`, 400, "EPROTO"},
		{"/shardz/v1/nope", `{}`, 404, "ENOENT"},
		{"/shardz/v1/assign", strings.Repeat(" ", maxBody+1), 413, "ETOOBIG"},
	}
	for _, c := range cases {
		st, m := post(t, s, c.path, c.body)
		if st != c.status || m["code"] != c.code || m["message"] == "" {
			t.Errorf("%s %.80s: %d %v, want %d %s", c.path, c.body, st, m, c.status, c.code)
		}
	}
	if got := h.take(); len(got) != 0 {
		t.Fatalf("bad messages called hooks: %v", got)
	}
	if st := s.Status(); st.AppliedRevision != 3 || st.Serving != 1 {
		t.Fatalf("bad messages changed the state: %+v", st)
	}
	// and serving continues: a good one still applies
	if st, _ := post(t, s, "/shardz/v1/assign", assignBody(10, "", rep("p1", 1, "none"))); st != 200 {
		t.Fatal("a good assignment after bad ones failed")
	}
}

func TestWorkerSecret(t *testing.T) {
	f := newFakeCoord(t, "available")
	s := startWorker(t, f, newHookLog(), func(c *ServerConfig) { c.Secret = "s3" })
	st, m := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":1}`)
	if st != 401 || m["code"] != "EPROTO" {
		t.Fatalf("no secret: %d %v", st, m)
	}
	req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/shardz/v1/ping",
		strings.NewReader(`{"namespace":"kv","node":"w1","revision":1}`))
	req.Header.Set("Authorization", "Bearer s3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with the secret: %v %v", err, resp)
	}
	resp.Body.Close()
}

// Strict: a worker whose lease lapsed, then applied a forged assignment from the future (no
// lease_ms), is resynchronised by a whole set with resync_from that grants the lease it is
// applied under, though older than the forged revision (issue 16: it was refused as ungranted,
// and the worker stayed wedged).
func TestWorkerResyncAfterLapseStrict(t *testing.T) {
	f := newFakeCoord(t, "strict")
	h := newHookLog()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := startWorker(t, f, h, func(c *ServerConfig) {
		c.Now = clk.now
		c.LeaseCheck = time.Hour
	})
	post(t, s, "/shardz/v1/assign", assignBody(10, `,"lease_ms":1000`, rep("p1", 1, "none")))
	clk.add(1600 * time.Millisecond) // past the lease
	if _, m := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":10,"lease_ms":1000}`); m["applied_revision"].(float64) != 0 {
		t.Fatalf("ping after a lapse: %v", m)
	}
	if st, m := post(t, s, "/shardz/v1/assign", assignBody(1000000, "")); st != 200 || m["applied_revision"].(float64) != 1000000 {
		t.Fatalf("forged: %d %v", st, m)
	}
	h.take()
	st, m := post(t, s, "/shardz/v1/assign", assignBody(11, `,"resync_from":1000000,"lease_ms":1000`, rep("p1", 2, "none")))
	if st != 200 || m["applied_revision"].(float64) != 11 {
		t.Fatalf("resync after a lapse: %d %v", st, m)
	}
	if got := strings.Join(h.take(), "; "); got != "serve p1 g2 none" || !s.LeaseOK() {
		t.Fatalf("resync after a lapse: hooks %q, lease ok %v", got, s.LeaseOK())
	}
}

// A full assignment with "resync_from" (docs/PROTOCOL.md 4.3): after a forged assignment with a
// revision the coordinator never issued, older assignments are stale (the wedge), except one
// whose resync_from is exactly the revision applied; later ones then apply as usual.
func TestWorkerResyncAfterForged(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	s := startWorker(t, f, h, nil)
	post(t, s, "/shardz/v1/assign", assignBody(10, "", rep("p1", 1, "none")))
	h.take()
	st, m := post(t, s, "/shardz/v1/assign", assignBody(1000000, ""))
	if st != 200 || m["applied_revision"].(float64) != 1000000 {
		t.Fatalf("forged: %d %v", st, m)
	}
	if got := strings.Join(h.take(), "; "); got != "delete p1 assign" {
		t.Fatalf("forged hooks: %s", got)
	}
	if st, _ = post(t, s, "/shardz/v1/assign", assignBody(11, "", rep("p1", 2, "none"))); st != 200 || len(h.take()) != 0 {
		t.Fatalf("an older assignment applied: %d", st)
	}
	if st, _ = post(t, s, "/shardz/v1/assign", assignBody(11, `,"resync_from":5`, rep("p1", 2, "none"))); st != 200 || len(h.take()) != 0 {
		t.Fatalf("a resync from another revision applied: %d", st)
	}
	if st, _ = post(t, s, "/shardz/v1/assign", assignBody(11, `,"resync_from":1000000,"base_revision":10`)); st != 400 {
		t.Fatalf("resync_from on a delta: %d", st)
	}
	st, m = post(t, s, "/shardz/v1/assign", assignBody(11, `,"resync_from":1000000`, rep("p1", 2, "none")))
	if st != 200 || m["applied_revision"].(float64) != 11 {
		t.Fatalf("resync: %d %v", st, m)
	}
	if got := strings.Join(h.take(), "; "); got != "serve p1 g2 none" {
		t.Fatalf("resync hooks: %s", got)
	}
	if st, m = post(t, s, "/shardz/v1/assign", assignBody(12, "")); st != 200 || m["applied_revision"].(float64) != 12 {
		t.Fatalf("after the resync: %d %v", st, m)
	}
}

// Protected mode's library half (issue 16): reachable beyond loopback without a secret warns
// loudly through Logf; loopback, or a secret, does not.
func TestWorkerUnprotectedWarns(t *testing.T) {
	warned := func(listen, addr, secret string) []string {
		var lines []string
		_, err := NewServer(ServerConfig{Coordinators: []string{"127.0.0.1:1"}, Namespace: "kv",
			NodeID: "w1", Listen: listen, Address: addr, Secret: secret,
			ServeFn:  func(Replica) error { return nil },
			DeleteFn: func(Replica) error { return nil },
			Logf: func(f string, a ...interface{}) {
				if l := fmt.Sprintf(f, a...); strings.Contains(l, "without a secret") {
					lines = append(lines, l)
				}
			}})
		if err != nil {
			t.Fatalf("NewServer(%q, %q): %v", listen, addr, err)
		}
		return lines
	}
	if l := warned("127.0.0.1:0", "", ""); len(l) != 0 {
		t.Fatalf("loopback warned: %v", l)
	}
	if l := warned("[::1]:0", "", ""); len(l) != 0 {
		t.Fatalf("::1 warned: %v", l)
	}
	if l := warned("0.0.0.0:0", "192.0.2.7:9000", ""); len(l) != 1 || !strings.Contains(l[0], "INSECURE") {
		t.Fatalf("a public listener without a secret: %v", l)
	}
	if l := warned("", "192.0.2.7:9000", ""); len(l) != 1 {
		t.Fatalf("a public address without a secret: %v", l)
	}
	if l := warned("0.0.0.0:0", "192.0.2.7:9000", "s3"); len(l) != 0 {
		t.Fatalf("with a secret: %v", l)
	}
}

// The strict lease: with no lease-granting message for lease_ms (less the margin), every
// replica is deleted, LeaseOK turns false, pings report applied_revision 0 and deltas are
// refused until a full set applies again.
func TestWorkerLeaseLapse(t *testing.T) {
	f := newFakeCoord(t, "strict")
	h := newHookLog()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	// the timer never fires here: the lapse is noticed by LeaseOK and by the next message
	s := startWorker(t, f, h, func(c *ServerConfig) {
		c.Now = clk.now
		c.LeaseCheck = time.Hour
		c.LeaseMargin = 110 * time.Millisecond
	})
	post(t, s, "/shardz/v1/assign", assignBody(20, `,"lease_ms":1000`, rep("p1", 3, "none"), rep("p2", 1, "none")))
	h.take()
	if !s.LeaseOK() || !s.Status().LeaseEnforced {
		t.Fatal("lease not ok right after an assignment")
	}
	// the effective lease is 1000 - 110 = 890 ms: at 889 it holds
	clk.add(889 * time.Millisecond)
	if !s.LeaseOK() {
		t.Fatal("lease lapsed early")
	}
	clk.add(time.Millisecond)
	if s.LeaseOK() {
		t.Fatal("LeaseOK after the lease ran out")
	}
	// a ping arriving after the lapse is answered only after it: applied_revision 0, and the
	// drop is queued before the renewal it carries
	_, m := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":20,"lease_ms":1000}`)
	if m["applied_revision"].(float64) != 0 {
		t.Fatalf("ping after a lapse: %v", m)
	}
	deadline := time.After(5 * time.Second)
	var got []string
	for len(got) < 2 {
		select {
		case c := <-h.ch:
			got = append(got, c)
		case <-deadline:
			t.Fatalf("no lease deletes; got %v", got)
		}
	}
	if strings.Join(got, "; ") != "delete p1 lease; delete p2 lease" {
		t.Fatalf("lease drop: %v", got)
	}
	h.take()
	st, m := post(t, s, "/shardz/v1/assign", assignBody(21, `,"lease_ms":1000,"base_revision":20`, rep("p3", 1, "none")))
	if st != 409 || m["applied_revision"].(float64) != 0 {
		t.Fatalf("delta after a lapse: %d %v", st, m)
	}
	st, _ = post(t, s, "/shardz/v1/assign", assignBody(22, `,"lease_ms":1000`, rep("p1", 4, "none")))
	if got := strings.Join(h.take(), "; "); st != 200 || got != "serve p1 g4 none" || !s.LeaseOK() {
		t.Fatalf("full set after a lapse: %d %s", st, got)
	}
	if s.Status().LeaseExpiries != 1 {
		t.Fatalf("lease expiries %d", s.Status().LeaseExpiries)
	}
}

// The timer notices a lapse with no message at all.
func TestWorkerLeaseTimer(t *testing.T) {
	f := newFakeCoord(t, "strict")
	h := newHookLog()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := startWorker(t, f, h, func(c *ServerConfig) { c.Now = clk.now; c.LeaseCheck = 5 * time.Millisecond })
	post(t, s, "/shardz/v1/assign", assignBody(20, `,"lease_ms":1000`, rep("p1", 3, "none")))
	h.take()
	clk.add(890 * time.Millisecond)
	select {
	case c := <-h.ch:
		if c != "delete p1 lease" {
			t.Fatalf("got %s", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the timer did not drop the replicas")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.waitFor(ctx, func() bool { return len(s.set) == 0 }); err != nil {
		t.Fatal("still serving after the lapse")
	}
	if s.LeaseOK() {
		t.Fatal("LeaseOK after the lapse's drop, before any lease-granting message")
	}
}

// A ping without lease_ms (the coordinator declared the node dead) does not renew the lease.
func TestWorkerPingWithoutLeaseDoesNotRenew(t *testing.T) {
	f := newFakeCoord(t, "strict")
	h := newHookLog()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := startWorker(t, f, h, func(c *ServerConfig) { c.Now = clk.now; c.LeaseCheck = 5 * time.Millisecond })
	post(t, s, "/shardz/v1/assign", assignBody(20, `,"lease_ms":1000`, rep("p1", 3, "none")))
	h.take()
	clk.add(800 * time.Millisecond)
	post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":20}`)
	clk.add(100 * time.Millisecond)
	select {
	case c := <-h.ch:
		if c != "delete p1 lease" {
			t.Fatalf("got %s", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a ping without lease_ms renewed the lease")
	}
}

func TestWorkerLoadReports(t *testing.T) {
	f := newFakeCoord(t, "available")
	s := startWorker(t, f, newHookLog(), nil)
	post(t, s, "/shardz/v1/assign", assignBody(3, "", rep("p1", 1, "none")))
	if err := s.ReportLoad("p1", "cpu", 1.5); err != nil {
		t.Fatal(err)
	}
	if err := s.ReportLoad("p9", "cpu", 1); err == nil {
		t.Fatal("load for a partition not served was accepted")
	}
	if err := s.ReportSplitKey("p1", "user:5"); err != nil {
		t.Fatal(err)
	}
	_, m := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":3}`)
	if jsonStr(m["load"]) != `{"p1":{"cpu":1.5}}` || jsonStr(m["split_at"]) != `{"p1":"user:5"}` {
		t.Fatalf("ping reply %v", m)
	}
	_, m = post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":3}`)
	if _, ok := m["load"]; ok {
		t.Fatalf("samples sent twice: %v", m)
	}
}

func TestWorkerLeave(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	s := startWorker(t, f, h, nil)
	post(t, s, "/shardz/v1/assign", assignBody(3, "", rep("p1", 1, "none")))
	h.take()
	left := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		left <- s.Leave(ctx)
	}()
	// the leave reaches the coordinator; Leave has not returned
	for deadline := time.Now().Add(5 * time.Second); ; {
		f.mu.Lock()
		n := f.leaves
		f.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leave sent")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-left:
		t.Fatalf("Leave returned before the release: %v", err)
	default:
	}
	st, _ := post(t, s, "/shardz/v1/assign", `{"namespace":"kv","node":"w1","revision":4,"released":true,"replicas":[]}`)
	if st != 200 {
		t.Fatal(st)
	}
	select {
	case err := <-left:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Leave did not return once released")
	}
	if got := h.take(); len(got) != 1 || got[0] != "delete p1 assign" {
		t.Fatalf("hooks %v", got)
	}
}

// A leave the coordinator does not know (404): nothing is routed here, everything is dropped.
func TestWorkerLeaveUnknownNode(t *testing.T) {
	f := newFakeCoord(t, "available")
	f.leaveStatus = 404
	h := newHookLog()
	s := startWorker(t, f, h, nil)
	post(t, s, "/shardz/v1/assign", assignBody(3, "", rep("p1", 1, "none")))
	h.take()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.take(); len(got) != 1 || got[0] != "delete p1 release" {
		t.Fatalf("hooks %v", got)
	}
}

// Several coordinators: a refused connection moves on to the next at once.
func TestWorkerCoordinatorFailover(t *testing.T) {
	f := newFakeCoord(t, "available")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close() // nothing listens there now
	s := startWorker(t, f, newHookLog(), func(c *ServerConfig) {
		c.Coordinators = []string{deadAddr + "," + f.addr()}
	})
	if s.Status().Registrations != 1 {
		t.Fatal("not registered through the second coordinator")
	}
}

func TestWorkerMountedHandler(t *testing.T) {
	f := newFakeCoord(t, "available")
	h := newHookLog()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()
	s, err := NewServer(ServerConfig{Coordinators: []string{f.addr()}, Namespace: "kv", NodeID: "w1",
		Address: strings.TrimPrefix(app.URL, "http://"), ServeFn: h.serve, DeleteFn: h.del,
		Logf: func(string, ...interface{}) {}})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/shardz/", s.Handler)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Post(app.URL+"/shardz/v1/assign", "application/json",
		bytes.NewReader([]byte(assignBody(2, "", rep("p1", 1, "none")))))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", err, resp)
	}
	resp.Body.Close()
	if got := h.take(); len(got) != 1 {
		t.Fatalf("hooks %v", got)
	}
}

// Stamps (PROTOCOL.md 4.1, 6): replies carry this worker's clock; a grant runs from the
// lease_stamp it echoes, so one that ran out before it arrived renews nothing and its
// assignment is not applied (a late push cannot resurrect a lease), and an older stamp never
// shortens the lease.
func TestWorkerLeaseStamps(t *testing.T) {
	f := newFakeCoord(t, "strict")
	h := newHookLog()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := startWorker(t, f, h, func(c *ServerConfig) {
		c.Now = clk.now
		c.LeaseCheck = time.Hour // LeaseOK and the messages notice the lapse
		c.LeaseMargin = 150 * time.Millisecond
	})
	clk.add(10 * time.Second) // stamps count from the worker's creation: now 10000
	_, m := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":5,"lease_ms":1000,"lease_stamp":9100}`)
	if m["stamp"].(float64) != 10000 {
		t.Fatalf("ping reply: %v", m)
	}
	_, m = post(t, s, "/shardz/v1/assign", assignBody(5, `,"lease_ms":1000,"lease_stamp":9100`, rep("p1", 3, "none")))
	if m["applied_revision"].(float64) != 0 || m["stamp"].(float64) != 10000 || len(h.take()) != 0 {
		t.Fatalf("a late assignment was applied: %v", m)
	}
	_, m = post(t, s, "/shardz/v1/assign", assignBody(5, `,"lease_ms":1000,"lease_stamp":9900`, rep("p1", 3, "none")))
	if got := strings.Join(h.take(), "; "); m["applied_revision"].(float64) != 5 || got != "serve p1 g3 none" {
		t.Fatalf("assignment in time: %v %s", m, got)
	}
	post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":5,"lease_ms":1000,"lease_stamp":9500}`)
	clk.add(740 * time.Millisecond) // the grant of 9900 lasts until 10750
	if !s.LeaseOK() {
		t.Fatal("an older stamp shortened the lease")
	}
	clk.add(10 * time.Millisecond) // from its receipt (10000) it would last until 10850
	if s.LeaseOK() {
		t.Fatal("the lease ran from the receipt, not the stamp")
	}
	post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":5,"lease_ms":1000,"lease_stamp":9900}`)
	if s.LeaseOK() {
		t.Fatal("a grant that ran out restored the lease")
	}
	_, m = post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":5,"lease_ms":1000,"lease_stamp":10700}`)
	if !s.LeaseOK() || m["stamp"].(float64) != 10750 {
		t.Fatalf("a fresh grant: %v", m)
	}
}

// Terms (PROTOCOL.md 4.2): a message of an older term than one seen (a deposed coordinator's)
// is refused 409 ESTALE naming the term seen; it renews no lease and changes nothing. One
// without a term (an older coordinator) is taken.
func TestWorkerTerms(t *testing.T) {
	f := newFakeCoord(t, "strict")
	h := newHookLog()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := startWorker(t, f, h, func(c *ServerConfig) {
		c.Now = clk.now
		c.LeaseCheck = time.Hour
		c.LeaseMargin = 150 * time.Millisecond
	})
	if st, m := post(t, s, "/shardz/v1/assign", assignBody(5, `,"lease_ms":1000,"term":7`, rep("p1", 3, "none"))); st != 200 || m["applied_revision"].(float64) != 5 {
		t.Fatalf("term 7: %d %v", st, m)
	}
	h.take()
	st, m := post(t, s, "/shardz/v1/assign", assignBody(9, `,"lease_ms":1000,"term":6`, rep("p2", 1, "none")))
	if st != 409 || m["code"] != "ESTALE" || m["term"].(float64) != 7 {
		t.Fatalf("a deposed leader's assignment: %d %v", st, m)
	}
	clk.add(800 * time.Millisecond)
	if st, _ := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":9,"lease_ms":1000,"term":6}`); st != 409 {
		t.Fatalf("a deposed leader's ping: %d", st)
	}
	clk.add(60 * time.Millisecond) // 860 ms after the last grant: it renewed nothing
	if s.LeaseOK() || len(h.take()) != 0 {
		t.Fatal("a deposed leader's ping renewed the lease, or its assignment ran")
	}
	if st, _ := post(t, s, "/shardz/v1/ping", `{"namespace":"kv","node":"w1","revision":9,"lease_ms":1000,"term":7}`); st != 200 {
		t.Fatalf("the leader's ping: %d", st)
	}
	if st, m := post(t, s, "/shardz/v1/assign", assignBody(10, `,"lease_ms":1000`, rep("p2", 1, "none"))); st != 200 || m["applied_revision"].(float64) != 10 {
		t.Fatalf("no term: %d %v", st, m)
	}
}

// State transfer (PROTOCOL.md 4.3): a serve hook of an adding replica sees where it comes from
// and says NotReady; serving says "ready": false; after Ready the pings list it until an
// assignment shows it serving.
func TestWorkerStateTransfer(t *testing.T) {
	f := newFakeCoord(t, "available")
	f.features = `["delta","transfer"]`
	var s *Server
	var from string
	s = startWorker(t, f, newHookLog(), func(c *ServerConfig) {
		c.ServeFn = func(r Replica) error {
			from = r.FromNode + "@" + r.FromAddress
			if r.FromNode != "" {
				return s.NotReady(r.Partition)
			}
			return nil
		}
	})
	adding := `{"partition":"p1","slot":0,"role":"none","generation":7,"state":"adding",` +
		`"from":{"node":"w0","address":"127.0.0.1:9100"}}`
	st, m := post(t, s, "/shardz/v1/assign", assignBody(3, "", adding))
	if st != 200 || from != "w0@127.0.0.1:9100" ||
		jsonStr(m["serving"]) != `[{"generation":7,"partition":"p1","ready":false}]` {
		t.Fatalf("assign: %d %v (from %s)", st, m, from)
	}
	ping := `{"namespace":"kv","node":"w1","revision":3}`
	if _, m = post(t, s, "/shardz/v1/ping", ping); m["ready"] != nil {
		t.Fatalf("ready before Ready: %v", m)
	}
	if s.Ready("p1", 6) == nil || s.NotReady("p1") == nil {
		t.Fatal("Ready of another generation, or NotReady outside a serve hook, was accepted")
	}
	if err := s.Ready("p1", 7); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // repeated until taken
		if _, m = post(t, s, "/shardz/v1/ping", ping); jsonStr(m["ready"]) != `[{"generation":7,"partition":"p1"}]` {
			t.Fatalf("ping %d: %v", i, m)
		}
	}
	st, m = post(t, s, "/shardz/v1/assign", assignBody(4, "", rep("p1", 7, "none")))
	if jsonStr(m["serving"]) != `[{"generation":7,"partition":"p1"}]` {
		t.Fatalf("assign serving: %v", m)
	}
	if _, m = post(t, s, "/shardz/v1/ping", ping); m["ready"] != nil {
		t.Fatalf("ready after it was taken: %v", m)
	}
	bad := `{"partition":"p2","generation":1,"state":"adding","from":{"node":"w 0","address":"x"}}`
	if st, _ = post(t, s, "/shardz/v1/assign", assignBody(5, "", bad)); st != 400 {
		t.Fatalf("a bad from: %d", st)
	}
}
