// The worker (docs/PROTOCOL.md section 4): Server registers with the coordinator, answers pings,
// diffs assignments into the application's ServeFn / DeleteFn, keeps the strict-mode lease and
// leaves gracefully. Goroutines, one of each per Server:
//   - HTTP handler goroutines (net/http's, one per request): a ping is answered at once under
//     mu and never waits for a hook; an assignment is parsed, validated and queued, and its
//     handler waits for the hook goroutine's answer.
//   - the hook goroutine runs queued jobs (assignments, lease lapse, local release) one at a
//     time: the only caller of ServeFn / DeleteFn and the only writer of the served set.
//   - the timer goroutine checks the lease and the re-registration watchdog every LeaseCheck.
//   - the control goroutine registers (with backoff), re-registers and leaves.
//
// Everything shared sits under mu; every change closes the changed channel (waiters select on
// it and their context).
package shardz

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// LeaseMode says when the strict-mode lease is enforced.
type LeaseMode int

const (
	LeaseAuto LeaseMode = iota // when the namespace is strict (unknown counts as strict)
	LeaseOn                    // always
	LeaseOff                   // never
)

// Cause says why a hook runs.
type Cause int

const (
	CauseAssign  Cause = iota // an assignment from the coordinator
	CauseLease                // the strict-mode lease lapsed: everything is deleted
	CauseRelease              // a leave the coordinator did not know of: everything is deleted
)

func (c Cause) String() string {
	return [...]string{"assign", "lease", "release"}[c]
}

// Replica is what a hook is told about one partition replica. Valid only during the call
// (copy what you keep).
type Replica struct {
	Namespace, Node string
	Partition       string
	Slot            int
	Role            string // "none", "primary", "secondary"
	State           string // "adding", "serving", "dropping"
	Generation      int64  // a fencing token: accept writes only with the highest seen
	Revision        int64  // the assignment's revision
	HasRange        bool   // a range namespace: RangeLo / RangeHi are the bounds
	RangeLo         string // "" is -infinity
	RangeHi         *string
	Update          bool  // serve of a partition already served (generation or role changed)
	OldGeneration   int64 // with Update: the generation served until now
	Cause           Cause
	// State transfer (PROTOCOL.md 4.3), serve of an "adding" replica: the node it comes from
	// and its address ("" when none was named). Copy the data from there; see NotReady.
	FromNode, FromAddress string
}

// ServerConfig configures a worker. The seed's shape: the coordinator address(es), the node,
// and the two hooks.
type ServerConfig struct {
	Coordinators []string // "host:port" of each coordinator (several for HA); required
	Namespace    string   // required
	NodeID       string   // required; 1-255 of [A-Za-z0-9._:-]
	Address      string   // host:port the coordinator reaches this endpoint at; default: Listen's bound address
	Listen       string   // host:port for the worker's own listener; "" to mount Handler instead
	Zone         string
	Capacity     map[string]float64 // per load dimension
	Secret       string             // sent and required as "Authorization: Bearer <secret>"
	// ServeFn is called to start serving a replica (or with Update, a new generation or role).
	// An error leaves it unserved (or at its old generation) and is reported to the
	// coordinator, which retries later. Calls are serialized: never two hooks at once.
	ServeFn func(Replica) error
	// DeleteFn is called to stop serving a replica. An error is reported, but the replica
	// counts as gone.
	DeleteFn func(Replica) error

	Lease           LeaseMode
	LeaseMargin     time.Duration // the lease ends this early; default 2*LeaseCheck + lease/10
	LeaseCheck      time.Duration // lease and watchdog timer period; default 25 ms
	RequestTimeout  time.Duration // requests to the coordinator; default 5 s
	BackoffMax      time.Duration // register / leave retry backoff cap; default 2 s
	ReregisterAfter time.Duration // no ping for this long: register again; default max(10 pings, 3 s)
	// Now is the clock of the lease and the stamps (tests inject one); default CLOCK_BOOTTIME.
	Now  func() time.Time
	Logf func(format string, args ...interface{}) // default log.Printf; use a no-op to silence
}

// Status is a snapshot of a worker's state, for tests and dashboards.
type Status struct {
	Registered, Leaving, Released, LeaseEnforced bool
	AppliedRevision                              int64
	PingIntervalMs, LeaseMs                      int64
	Serving                                      int
	Registrations, Assignments, Deltas           uint64
	DeltasRefused, LeaseExpiries                 uint64
	DeltaAgreed                                  bool
	LastError                                    string
}

type served struct {
	wireReplica
	pending  bool // a new partition whose serve hook is running
	unready  bool // its serve hook said NotReady: "ready": false until Ready
	ready    bool // became ready after that: "ready" in pings until assigned serving
	serving  bool // its serve hook runs now (NotReady is allowed)
	load     map[string]float64
	splitKey *string
}

const (
	jobAssign = iota
	jobLease
	jobRelease
)

type jobResult struct {
	status int
	body   []byte
}

type job struct {
	kind     int
	a        *assignMsg
	grantEnd time.Time      // strict: its own lease grant lasts until then (zero: none)
	done     chan jobResult // assignments only; buffered
}

// Server is a worker. Create with NewServer, then Start.
type Server struct {
	cfg    ServerConfig
	coords *coordinators
	now    func() time.Time
	epoch  time.Time // stamps are milliseconds of now() since then (PROTOCOL.md 4.1)
	incarn string    // this process (PROTOCOL.md 4.1): 32 random hex digits
	logf   func(string, ...interface{})

	listener net.Listener
	httpSrv  *http.Server
	addr     string
	stopCh   chan struct{}
	wg       sync.WaitGroup

	mu sync.Mutex
	// ---- under mu ----
	changed          chan struct{}
	started, stopped bool
	registered       bool
	wantRegister     bool
	leaving          bool
	leaveDone        bool
	released         bool
	kick             chan struct{} // wakes the control goroutine (buffered 1)
	pingIntervalMs   int64
	leaseMs          int64
	consistency      int // -1 unknown, 0 available, 1 strict
	contact          bool
	lastContact      time.Time // the lease runs from here: the latest grant's lease_stamp, or its receipt
	lastAlive        time.Time // last contact or registration: the watchdog
	appliedReported  int64     // applied_revision of replies; 0 after a lapse or local release
	lastRevision     int64     // highest revision applied: older assignments are stale
	termSeen         int64     // the highest coordinator term seen (PROTOCOL.md 4.2): older ones are refused
	deltaAgreed      bool
	transferAgreed   bool // the register reply listed "transfer"
	st               Status
	set              map[string]*served
	jobs             []*job
	leaseQueued      bool
	leaseLapsed      bool
	leaseRevoked     bool // a lapse was noticed and no lease-granting message came since
}

// NewServer checks the config and makes a worker; nothing runs until Start.
func NewServer(cfg ServerConfig) (*Server, error) {
	if !validNamespace(cfg.Namespace) {
		return nil, fmt.Errorf("shardz: bad namespace %q", cfg.Namespace)
	}
	if !validID(cfg.NodeID, maxIDLen) {
		return nil, fmt.Errorf("shardz: bad node id %q", cfg.NodeID)
	}
	if cfg.ServeFn == nil || cfg.DeleteFn == nil {
		return nil, errors.New("shardz: ServeFn and DeleteFn are required")
	}
	if cfg.Listen == "" && cfg.Address == "" {
		return nil, errors.New("shardz: Listen or Address is required")
	}
	if cfg.Zone != "" && !validID(cfg.Zone, maxNameLen) {
		return nil, fmt.Errorf("shardz: bad zone %q", cfg.Zone)
	}
	for d := range cfg.Capacity {
		if !validID(d, maxNameLen) {
			return nil, fmt.Errorf("shardz: bad capacity dimension %q", d)
		}
	}
	if cfg.LeaseCheck <= 0 {
		cfg.LeaseCheck = 25 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 2 * time.Second
	}
	coords, err := newCoordinators(cfg.Coordinators, cfg.Secret, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, coords: coords, now: cfg.Now, logf: cfg.Logf,
		stopCh: make(chan struct{}), changed: make(chan struct{}), kick: make(chan struct{}, 1),
		consistency: -1, set: map[string]*served{}, addr: cfg.Address}
	if s.now == nil {
		s.now = bootNow
	}
	s.epoch = s.now()
	s.incarn = newIncarnation()
	if s.logf == nil {
		s.logf = log.Printf
	}
	s.warnUnprotected()
	return s, nil
}

// warnUnprotected is protected mode's library half (issue 16): a worker reachable beyond
// loopback without a secret takes assignments from anyone who reaches it (one forged message
// deletes everything it serves). Not refused, but said loudly through Logf.
func (s *Server) warnUnprotected() {
	if s.cfg.Secret != "" {
		return
	}
	for _, addr := range []string{s.cfg.Listen, s.cfg.Address} {
		if addr == "" {
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		if err == nil && (strings.HasPrefix(host, "127.") || host == "::1" || host == "localhost") {
			continue
		}
		s.logf("shardz: INSECURE: worker %s is reachable at %s without a secret: anyone who "+
			"reaches it can assign or delete its partitions. Give it the coordinator's secret "+
			"(ServerConfig.Secret, from SHARDZ_SECRET or a file)", s.cfg.NodeID, addr)
		return
	}
}

// Start binds the listener (when Listen is set) and starts registering in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("shardz: already started")
	}
	s.started = true
	s.mu.Unlock()
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return err
		}
		s.listener = ln
		if s.addr == "" {
			s.addr = ln.Addr().String()
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/", s.Handler)
		s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.httpSrv.Serve(ln)
		}()
	}
	s.mu.Lock()
	s.wantRegister = true
	s.lastAlive = s.now()
	s.mu.Unlock()
	s.wg.Add(3)
	go s.hookLoop()
	go s.timerLoop()
	go s.controlLoop()
	return nil
}

// Addr is the address registered with the coordinator.
func (s *Server) Addr() string { return s.addr }

// under mu
func (s *Server) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) kickControl() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (checked under mu) holds, ctx ends or the server stops.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return errors.New("shardz: worker stopped")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopCh:
		}
	}
}

// WaitRegistered waits for the first successful registration.
func (s *Server) WaitRegistered(ctx context.Context) error {
	return s.waitFor(ctx, func() bool { return s.registered })
}

// ---- the lease ----------------------------------------------------------------------------

// under mu: the effective lease (0: not enforced).
func (s *Server) leaseEff() time.Duration {
	return s.leaseEffFor(s.leaseMs)
}

// under mu: the effective lease of a grant of leaseMs (0: not enforced).
func (s *Server) leaseEffFor(leaseMs int64) time.Duration {
	on := false
	switch s.cfg.Lease {
	case LeaseOn:
		on = true
	case LeaseOff:
		on = false
	default:
		on = s.consistency != 0
	}
	if !on || leaseMs <= 0 {
		return 0
	}
	lease := time.Duration(leaseMs) * time.Millisecond
	margin := s.cfg.LeaseMargin
	if margin == 0 {
		margin = 2*s.cfg.LeaseCheck + lease/10
	}
	if margin < lease/2 {
		return lease - margin
	}
	return lease/2 + time.Millisecond
}

// under mu: the lease has lapsed (and it matters: something is served).
func (s *Server) leaseExpired(now time.Time) bool {
	eff := s.leaseEff()
	return eff != 0 && s.contact && len(s.set) > 0 && now.Sub(s.lastContact) >= eff
}

// under mu: notices a lapse (from the timer, or when a message arrives after a pause) and
// queues the drop; from here on nothing is reported applied.
func (s *Server) checkLapse(now time.Time) {
	if s.leaseLapsed || s.stopped || !s.leaseExpired(now) {
		return
	}
	s.leaseLapsed = true
	s.leaseRevoked = true
	s.appliedReported = 0
	if !s.leaseQueued {
		s.leaseQueued = true
		s.enqueue(&job{kind: jobLease})
	}
}

// under mu: the 409 refusal of a message of an older term than one seen (a deposed
// coordinator's), or nil; a newer term is remembered.
func (s *Server) deposed(term int64) []byte {
	if term >= 0 && term < s.termSeen {
		s.logf("shardz: refused a message of term %d: term %d seen", term, s.termSeen)
		out, _ := json.Marshal(struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Term    int64  `json:"term"`
		}{"ESTALE", fmt.Sprintf("from term %d, but term %d was seen: a deposed coordinator",
			term, s.termSeen), s.termSeen})
		return out
	}
	if term > s.termSeen {
		s.termSeen = term
	}
	return nil
}

// under mu: this worker's clock as a stamp (PROTOCOL.md 4.1), in every reply and registration.
func (s *Server) stamp() int64 {
	if ms := s.now().Sub(s.epoch).Milliseconds(); ms > 0 {
		return ms
	}
	return 0
}

// under mu: a message arrived from the coordinator, granting a lease of leaseMs (0: none)
// from leaseStamp (this worker's clock echoed; -1: from its receipt). Returns until when its
// own grant lasts (zero: it grants nothing). A grant that ran out before it arrived (a late
// message) renews nothing, and no grant shortens the lease (docs/PROTOCOL.md section 6).
func (s *Server) contactFrom(leaseMs, leaseStamp int64, consistency int) time.Time {
	now := s.now()
	s.checkLapse(now) // before renewing: a late message does not undo a lapse
	s.lastAlive = now
	if consistency >= 0 {
		s.consistency = consistency
	}
	if leaseMs <= 0 {
		// only a lease-granting message renews it (docs/PROTOCOL.md section 6)
		return time.Time{}
	}
	from := now
	if leaseStamp >= 0 {
		from = s.epoch.Add(time.Duration(leaseStamp) * time.Millisecond)
		if from.After(now) {
			return time.Time{} // from the future: not this clock's (another process's)
		}
	}
	eff := s.leaseEffFor(leaseMs)
	if eff != 0 && now.Sub(from) >= eff {
		return time.Time{} // delivered after its grant ran out
	}
	if !s.contact || from.After(s.lastContact) {
		s.lastContact = from
	}
	s.contact = true
	s.leaseMs = leaseMs
	s.leaseRevoked = false
	if eff == 0 {
		return now.Add(1<<62 - 1)
	}
	return from.Add(eff)
}

// LeaseOK tells whether the application may act on what it serves now: false once the
// strict-mode lease has lapsed, also once the replicas were deleted, until a lease-granting
// message arrives. Reads the clock itself.
func (s *Server) LeaseOK() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.leaseLapsed && !s.leaseRevoked && !s.leaseExpired(s.now())
}

// ---- the endpoint ---------------------------------------------------------------------------

// Handler serves the worker endpoint, POST /shardz/v1/ping and /shardz/v1/assign. Mount it
// with http.HandleFunc("/shardz/", server.Handler) when Listen is "". Pings are answered at
// once; an assignment's request waits for its hooks (other requests run meanwhile).
func (s *Server) Handler(w http.ResponseWriter, r *http.Request) {
	status, body := s.handle(r)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) secretOK(auth string) bool {
	if s.cfg.Secret == "" {
		return true
	}
	want := "Bearer " + s.cfg.Secret
	return subtle.ConstantTimeCompare([]byte(auth), []byte(want)) == 1
}

func errReply(e *protoError) (int, []byte) {
	st, ok := errorStatus[e.code]
	if !ok {
		st = 500
	}
	return st, errorBody(e.code, e.msg)
}

func (s *Server) handle(r *http.Request) (int, []byte) {
	if !s.secretOK(r.Header.Get("Authorization")) {
		return 401, errorBody("EPROTO", "bad or missing secret")
	}
	ping := r.URL.Path == "/shardz/v1/ping"
	assign := r.URL.Path == "/shardz/v1/assign"
	if !ping && !assign {
		return errReply(perr("ENOENT", "no such endpoint (POST /shardz/v1/ping or assign)"))
	}
	if r.Method != http.MethodPost {
		return errReply(perr("EPROTO", "only POST is accepted here"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errReply(perr("EINVAL", "reading the body: %v", err))
	}
	if len(body) > maxBody {
		return errReply(perr("ETOOBIG", "body over 1 MiB"))
	}
	if ping {
		return s.handlePing(body)
	}
	return s.handleAssign(body)
}

type loadReply map[string]map[string]float64

func (s *Server) handlePing(body []byte) (int, []byte) {
	p, e := parsePing(body, s.cfg.Namespace, s.cfg.NodeID)
	if e != nil {
		s.logf("shardz: rejected a ping: %s", e.msg)
		return errReply(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errReply(perr("EBUSY", "worker not running"))
	}
	if out := s.deposed(p.Term); out != nil {
		return 409, out
	}
	s.contactFrom(p.LeaseMs, p.LeaseStamp, p.Consistency)
	reply := struct {
		Node    string            `json:"node"`
		Applied int64             `json:"applied_revision"`
		Stamp   int64             `json:"stamp"`
		Load    loadReply         `json:"load,omitempty"`
		SplitAt map[string]string `json:"split_at,omitempty"`
		Ready   []servingEntry    `json:"ready,omitempty"`
	}{Node: s.cfg.NodeID, Applied: s.appliedReported, Stamp: s.stamp()}
	for pid, rec := range s.set {
		if rec.ready && !rec.unready && !rec.pending && s.transferAgreed {
			reply.Ready = append(reply.Ready, servingEntry{Partition: pid, Generation: rec.Generation})
		}
		if len(rec.load) > 0 {
			if reply.Load == nil {
				reply.Load = loadReply{}
			}
			reply.Load[pid] = rec.load
			rec.load = nil
		}
		if rec.splitKey != nil {
			if reply.SplitAt == nil {
				reply.SplitAt = map[string]string{}
			}
			reply.SplitAt[pid] = *rec.splitKey
			rec.splitKey = nil
		}
	}
	out, _ := json.Marshal(reply)
	return 200, out
}

func (s *Server) handleAssign(body []byte) (int, []byte) {
	a, e := parseAssign(body, s.cfg.Namespace, s.cfg.NodeID)
	if e != nil {
		s.logf("shardz: rejected an assignment: %s", e.msg)
		return errReply(e)
	}
	j := &job{kind: jobAssign, a: a, done: make(chan jobResult, 1)}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return errReply(perr("EBUSY", "worker stopping"))
	}
	if out := s.deposed(a.Term); out != nil {
		s.mu.Unlock()
		return 409, out
	}
	// may queue a lease drop first; an assignment older than one applied renews nothing,
	// unless it resynchronises this worker from a revision the coordinator never issued (a
	// strict worker would stay wedged: the assignment would bring no lease to apply it under)
	lease := a.LeaseMs
	if a.Revision < s.lastRevision && !(a.ResyncFrom > 0 && a.ResyncFrom == s.lastRevision) {
		lease = 0
	}
	j.grantEnd = s.contactFrom(lease, a.LeaseStamp, a.Consistency)
	s.enqueue(j)
	s.mu.Unlock()
	res := <-j.done
	return res.status, res.body
}

// ---- the hook goroutine -----------------------------------------------------------------------

// under mu
func (s *Server) enqueue(j *job) {
	s.jobs = append(s.jobs, j)
	s.broadcast()
}

func (s *Server) hookLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.jobs) == 0 && !s.stopped {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
			case <-s.stopCh:
			}
			s.mu.Lock()
		}
		if s.stopped {
			// answer what is still queued without running it
			for _, j := range s.jobs {
				if j.done != nil {
					j.done <- jobResult{409, errorBody("EBUSY", "worker stopping")}
				}
			}
			s.jobs = nil
			s.mu.Unlock()
			return
		}
		j := s.jobs[0]
		s.jobs = s.jobs[1:]
		if j.kind == jobLease {
			s.leaseQueued = false
			if !s.leaseLapsed {
				s.mu.Unlock()
				continue
			}
		}
		s.mu.Unlock()
		switch j.kind {
		case jobAssign:
			j.done <- s.apply(j.a, j.grantEnd)
		case jobLease:
			s.logf("shardz: lease lapsed without contact: deleting every replica")
			s.dropAll(CauseLease)
		default:
			s.dropAll(CauseRelease)
		}
	}
}

func (s *Server) info(w *wireReplica, rev int64, cause Cause, update bool, oldGen int64) Replica {
	return Replica{Namespace: s.cfg.Namespace, Node: s.cfg.NodeID, Partition: w.Partition,
		Slot: w.Slot, Role: w.Role, State: w.State, Generation: w.Generation, Revision: rev,
		HasRange: w.HasRange, RangeLo: w.RangeLo, RangeHi: w.RangeHi, Update: update,
		OldGeneration: oldGen, Cause: cause, FromNode: w.FromNode, FromAddress: w.FromAddr}
}

// call runs a hook, turning a panic into an error so one bad hook cannot kill the worker.
func (s *Server) call(hook func(Replica) error, r Replica) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hook panicked: %v", p)
		}
	}()
	return hook(r)
}

type failure struct {
	Partition string `json:"partition"`
	Error     string `json:"error"`
}

// deleteRec calls DeleteFn and removes the record (a failure is reported, but it is gone).
func (s *Server) deleteRec(rec *served, rev int64, cause Cause, failed *[]failure) {
	if err := s.call(s.cfg.DeleteFn, s.info(&rec.wireReplica, rev, cause, false, 0)); err != nil {
		s.logf("shardz: delete %s failed: %v", rec.Partition, err)
		if failed != nil {
			*failed = append(*failed, failure{rec.Partition, err.Error()})
		}
	}
	s.mu.Lock()
	delete(s.set, rec.Partition)
	s.mu.Unlock()
}

// sortedSet lists the served records in partition id order (hook goroutine: it alone writes).
func (s *Server) sortedSet() []*served {
	s.mu.Lock()
	v := make([]*served, 0, len(s.set))
	for _, r := range s.set {
		v = append(v, r)
	}
	s.mu.Unlock()
	sort.Slice(v, func(i, j int) bool { return v[i].Partition < v[j].Partition })
	return v
}

func (s *Server) dropAll(cause Cause) {
	s.mu.Lock()
	rev := s.lastRevision
	s.mu.Unlock()
	for _, rec := range s.sortedSet() {
		s.deleteRec(rec, rev, cause, nil)
	}
	s.mu.Lock()
	s.appliedReported = 0 // the set is gone without an assignment: only a full set applies
	if cause == CauseLease {
		s.st.LeaseExpiries++
		s.leaseLapsed = false
	} else {
		s.released = true
	}
	s.broadcast()
	s.mu.Unlock()
}

// serveOne serves one desired replica (new, or a changed generation or role).
func (s *Server) serveOne(w *wireReplica, rev int64, failed *[]failure) {
	s.mu.Lock()
	rec := s.set[w.Partition]
	if rec != nil && rec.Generation == w.Generation && rec.Role == w.Role {
		rec.Slot, rec.State = w.Slot, w.State // nothing to call: keep them current
		if w.State != "adding" {
			rec.ready = false // the coordinator took its readiness
		}
		s.mu.Unlock()
		return
	}
	if rec == nil {
		rec = &served{wireReplica: *w, pending: true}
		s.set[w.Partition] = rec
	}
	rec.unready, rec.ready, rec.serving = false, false, true // a new serve: its own readiness
	s.mu.Unlock()
	update := !rec.pending
	oldGen := int64(0)
	if update {
		oldGen = rec.Generation
	}
	err := s.call(s.cfg.ServeFn, s.info(w, rev, CauseAssign, update, oldGen))
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.serving = false
	if err != nil {
		*failed = append(*failed, failure{w.Partition, err.Error()})
		if !update {
			delete(s.set, w.Partition)
		} // an update keeps the old generation served
		return
	}
	rec.wireReplica = *w
	rec.pending = false
}

// apply runs one assignment: stale ones are only answered; a delta on another base is refused
// (409) and changes nothing; one that arrived before a lease lapse is not applied.
func (s *Server) apply(a *assignMsg, grantEnd time.Time) jobResult {
	s.mu.Lock()
	// stale: older than the last applied (unless the coordinator resynchronises us from a
	// revision it never issued: a forged assignment would wedge us otherwise), or of a term
	// older than one seen since it was queued
	stale := (a.Revision < s.lastRevision && !(a.ResyncFrom > 0 && a.ResyncFrom == s.lastRevision)) ||
		(a.Term >= 0 && a.Term < s.termSeen)
	s.checkLapse(s.now()) // a lapse resets appliedReported: no delta fits then
	if !stale && a.Delta && a.BaseRevision != s.appliedReported {
		s.logf("shardz: refused delta %d: its base %d is not the applied revision %d",
			a.Revision, a.BaseRevision, s.appliedReported)
		s.st.DeltasRefused++
		body, _ := json.Marshal(struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Applied int64  `json:"applied_revision"`
		}{"ESTALE", fmt.Sprintf("delta from revision %d, but the revision applied here is %d: "+
			"send a full assignment", a.BaseRevision, s.appliedReported), s.appliedReported})
		s.mu.Unlock()
		return jobResult{409, body}
	}
	// A strict assignment is applied only while its own grant lasts: one delivered late, or
	// that waited past its grant, may be one the coordinator gave up on (section 6).
	expired := s.leaseLapsed || (!stale && a.LeaseMs > 0 && s.leaseEffFor(a.LeaseMs) != 0 &&
		!s.now().Before(grantEnd))
	s.mu.Unlock()
	failed := []failure{}
	switch {
	case stale:
		s.logf("shardz: ignored assignment %d: older than %d", a.Revision, s.lastRevision)
	case expired:
		s.logf("shardz: no lease for assignment %d (lapsed, or its grant ran out): not applied",
			a.Revision)
	default:
		if a.Delta {
			for _, pid := range a.Removed {
				s.mu.Lock()
				rec := s.set[pid]
				s.mu.Unlock()
				if rec != nil {
					s.deleteRec(rec, a.Revision, CauseAssign, &failed)
				}
			}
		} else {
			for _, rec := range s.sortedSet() {
				if a.find(rec.Partition) == nil {
					s.deleteRec(rec, a.Revision, CauseAssign, &failed)
				}
			}
		}
		for i := range a.Replicas {
			s.serveOne(&a.Replicas[i], a.Revision, &failed)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	applied := !stale && !expired
	if applied {
		s.lastRevision = a.Revision
		if !s.leaseLapsed { // a lapse noticed while the hooks ran: the drop comes next
			s.appliedReported = a.Revision
		}
		s.st.Assignments++
		if a.Delta {
			s.st.Deltas++
		}
		if a.Released {
			s.released = true
		}
		s.broadcast()
	}
	return jobResult{200, s.assignReply(applied && a.Delta, a, failed)}
}

type servingEntry struct {
	Partition  string `json:"partition"`
	Generation int64  `json:"generation"`
	Ready      *bool  `json:"ready,omitempty"`
}

// under mu: {"node", "applied_revision", ["delta": true,] "serving", "failed"}. A delta reply
// lists only the partitions the delta named that are served now.
func (s *Server) assignReply(delta bool, a *assignMsg, failed []failure) []byte {
	var names []string
	if delta {
		for _, r := range a.Replicas {
			names = append(names, r.Partition)
		}
		names = append(names, a.Removed...)
	} else {
		for pid := range s.set {
			names = append(names, pid)
		}
		sort.Strings(names)
	}
	serving := []servingEntry{}
	for _, pid := range names {
		rec := s.set[pid]
		if s.leaseLapsed || rec == nil || rec.pending {
			continue
		}
		e := servingEntry{Partition: pid, Generation: rec.Generation}
		if rec.unready && s.transferAgreed {
			f := false
			e.Ready = &f // its transfer goes on
		}
		serving = append(serving, e)
	}
	reply := struct {
		Node    string         `json:"node"`
		Applied int64          `json:"applied_revision"`
		Stamp   int64          `json:"stamp"`
		Delta   bool           `json:"delta,omitempty"`
		Serving []servingEntry `json:"serving"`
		Failed  []failure      `json:"failed"`
	}{s.cfg.NodeID, s.appliedReported, s.stamp(), delta, serving, failed}
	out, _ := json.Marshal(reply)
	return out
}

// ---- the timer goroutine -------------------------------------------------------------------

func (s *Server) timerLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.LeaseCheck)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
		}
		s.tick()
	}
}

func (s *Server) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.checkLapse(now)
	rereg := s.cfg.ReregisterAfter
	if rereg == 0 {
		rereg = time.Duration(10*s.pingIntervalMs) * time.Millisecond
		if rereg < 3*time.Second {
			rereg = 3 * time.Second
		}
	}
	if s.registered && !s.wantRegister && !s.leaving && !s.released &&
		now.Sub(s.lastAlive) >= rereg {
		s.logf("shardz: no ping for %v: registering again", now.Sub(s.lastAlive))
		s.wantRegister = true
		s.kickControl()
	}
}

// ---- the control goroutine -------------------------------------------------------------------

func (s *Server) setError(what string, err error) {
	msg := fmt.Sprintf("%s: %v", what, err)
	s.mu.Lock()
	s.st.LastError = msg
	s.mu.Unlock()
	s.logf("shardz: %s", msg)
}

func (s *Server) controlLoop() {
	defer s.wg.Done()
	backoff := 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopCh
		cancel()
	}()
	for {
		s.mu.Lock()
		doLeave := s.leaving && !s.leaveDone
		doRegister := s.wantRegister && !s.leaving
		s.mu.Unlock()
		var err error
		switch {
		case doLeave:
			err = s.leaveOnce(ctx)
		case doRegister:
			err = s.registerOnce(ctx)
		default:
			select {
			case <-s.kick:
				continue
			case <-s.stopCh:
				return
			}
		}
		if err == nil {
			backoff = 50 * time.Millisecond
			continue
		}
		// +-25% jitter: workers restarted together spread out
		d := backoff - backoff/4 + time.Duration(rand.Int63n(int64(backoff/2)+1))
		select {
		case <-time.After(d):
		case <-s.kick:
		case <-s.stopCh:
			return
		}
		if backoff *= 2; backoff > s.cfg.BackoffMax {
			backoff = s.cfg.BackoffMax
		}
	}
}

func (s *Server) nsPath() string { return "/v1/namespaces/" + url.PathEscape(s.cfg.Namespace) }

// learn reads timings and the consistency mode from a reply object (top level or "config").
func (s *Server) learn(root map[string]json.RawMessage) {
	objs := []object{root}
	var cfg object
	if json.Unmarshal(root["config"], &cfg) == nil && cfg != nil {
		objs = append(objs, cfg)
	}
	for _, o := range objs {
		if v, ok := o.integer("ping_interval_ms", 1, maxLeaseMs); ok {
			s.pingIntervalMs = v
		}
		if v, ok := o.integer("lease_ms", 1, maxLeaseMs); ok {
			s.leaseMs = v
		}
		if c := consistencyOf(o); c >= 0 {
			s.consistency = c
		}
	}
}

func (s *Server) registerOnce(ctx context.Context) error {
	capacity := s.cfg.Capacity
	if capacity == nil {
		capacity = map[string]float64{}
	}
	s.mu.Lock()
	stamp := s.stamp() // a lease granted on this registration runs from here
	s.mu.Unlock()
	body, _ := json.Marshal(struct {
		ID          string             `json:"id"`
		Address     string             `json:"address"`
		Zone        string             `json:"zone"`
		Capacity    map[string]float64 `json:"capacity"`
		Features    []string           `json:"features"`
		Incarnation string             `json:"incarnation"`
		Stamp       int64              `json:"stamp"`
	}{s.cfg.NodeID, s.addr, s.cfg.Zone, capacity, []string{"delta", "term", "transfer"}, s.incarn, stamp})
	reply, err := s.coords.call(ctx, "POST", s.nsPath()+"/nodes", body)
	if err != nil {
		s.setError("register", err)
		return err
	}
	var root object
	_ = json.Unmarshal(reply, &root)
	s.mu.Lock()
	s.learn(root)
	var feats []string
	_ = json.Unmarshal(root["features"], &feats)
	if t, ok := root.integer("term", 0, 1<<63-1); ok && t > s.termSeen {
		s.termSeen = t // the registering coordinator's leadership
	}
	s.deltaAgreed, s.transferAgreed = false, false // each registration starts over
	for _, f := range feats {
		s.deltaAgreed = s.deltaAgreed || f == "delta"
		s.transferAgreed = s.transferAgreed || f == "transfer"
	}
	needNS := s.cfg.Lease == LeaseAuto && s.consistency < 0
	s.mu.Unlock()
	if needNS { // the register reply did not say the consistency mode
		reply, err := s.coords.call(ctx, "GET", s.nsPath(), nil)
		if err != nil {
			s.setError("read namespace", err)
			return err
		}
		var ns object
		if json.Unmarshal(reply, &ns) != nil || ns == nil {
			err := errors.New("not a JSON object")
			s.setError("read namespace", err)
			return err
		}
		s.mu.Lock()
		s.learn(ns)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.registered = true
	s.wantRegister = false
	s.st.Registrations++
	s.lastAlive = s.now()
	s.st.LastError = ""
	s.broadcast()
	mode := map[bool]string{true: "strict", false: "available"}[s.consistency != 0]
	s.logf("shardz: registered %s/%s at %s (ping %d ms, lease %d ms, %s, delta %v)",
		s.cfg.Namespace, s.cfg.NodeID, s.addr, s.pingIntervalMs, s.leaseMs, mode, s.deltaAgreed)
	s.mu.Unlock()
	return nil
}

func (s *Server) leaveOnce(ctx context.Context) error {
	path := s.nsPath() + "/nodes/" + url.PathEscape(s.cfg.NodeID) + "/leave"
	_, err := s.coords.call(ctx, "POST", path, []byte("{}"))
	var api *APIError
	if errors.As(err, &api) && api.Status == 404 {
		// the coordinator does not know this node: nothing is routed here, so dropping what
		// is still served is safe; the hook goroutine does it, then counts the node released
		s.mu.Lock()
		s.enqueue(&job{kind: jobRelease})
		s.leaveDone = true
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		s.setError("leave", err)
		return err
	}
	s.mu.Lock()
	s.leaveDone = true
	s.mu.Unlock()
	s.logf("shardz: leave sent; waiting to be released")
	return nil
}

// Leave asks the coordinator to move this worker's partitions away and returns once it is
// released (an assignment with "released": true), ctx ends, or the worker stops. Pings and
// assignments go on meanwhile. Call Close afterwards.
func (s *Server) Leave(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return errors.New("shardz: worker not running")
	}
	if !s.leaving {
		s.leaving = true
		s.broadcast()
	}
	s.mu.Unlock()
	s.kickControl()
	return s.waitFor(ctx, func() bool { return s.released })
}

// ReportLoad records a load sample for a served partition, sent with the next ping reply (the
// latest value per partition and dimension). Any goroutine, hooks included.
func (s *Server) ReportLoad(partition, dimension string, value float64) error {
	if !validID(dimension, maxNameLen) || value < 0 || value != value || value > 1e300 {
		return fmt.Errorf("shardz: bad load sample %q=%v", dimension, value)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.set[partition]
	if rec == nil {
		return fmt.Errorf("shardz: partition %q is not served here", partition)
	}
	if rec.load == nil {
		rec.load = map[string]float64{}
	}
	rec.load[dimension] = value
	return nil
}

// NotReady is called by a serve hook, for the partition it serves, when the replica must copy
// its data (from Replica.FromAddress) before it takes traffic (state transfer, PROTOCOL.md
// 4.3): it is served, but the coordinator keeps routing on the old owner until Ready, or the
// namespace's transfer_timeout_ms. A hook that never calls it is ready at once.
func (s *Server) NotReady(partition string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.set[partition]
	if rec == nil || !rec.serving {
		return fmt.Errorf("shardz: partition %q is not being served now", partition)
	}
	rec.unready, rec.ready = true, false
	return nil
}

// Ready reports the transfer of a partition NotReady marked done, at the generation its serve
// hook was given: the next ping replies list it until an assignment shows it serving. Any
// goroutine.
func (s *Server) Ready(partition string, generation int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.set[partition]
	if rec == nil || (rec.Generation != generation && !rec.serving) {
		return fmt.Errorf("shardz: partition %q is not served at generation %d", partition, generation)
	}
	if rec.unready {
		rec.unready, rec.ready = false, true
	}
	return nil
}

// ReportSplitKey suggests where to split a served range (range namespaces), sent with the next
// ping reply.
func (s *Server) ReportSplitKey(partition, key string) error {
	if len(key) == 0 || len(key) > maxBoundLen {
		return errors.New("shardz: a split key is 1-1024 bytes")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.set[partition]
	if rec == nil {
		return fmt.Errorf("shardz: partition %q is not served here", partition)
	}
	rec.splitKey = &key
	return nil
}

// Status returns a snapshot of the worker's state.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Registered, st.Leaving, st.Released = s.registered, s.leaving, s.released
	st.LeaseEnforced = s.leaseEff() != 0
	st.AppliedRevision = s.appliedReported
	st.PingIntervalMs, st.LeaseMs = s.pingIntervalMs, s.leaseMs
	st.DeltaAgreed = s.deltaAgreed
	for _, r := range s.set {
		if !r.pending {
			st.Serving++
		}
	}
	return st
}

// Close stops the worker: the listener, the goroutines, queued assignments (answered 409
// EBUSY). It does not call DeleteFn: the process owns its data until it exits, and a worker
// restarted under the same id before it is dead keeps its replicas. Not from a hook.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.broadcast()
	s.mu.Unlock()
	close(s.stopCh)
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.httpSrv.Shutdown(ctx)
		cancel()
		_ = s.httpSrv.Close()
	}
	s.wg.Wait()
	return nil
}
