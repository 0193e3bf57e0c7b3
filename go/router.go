// The router (docs/PROTOCOL.md section 7): a local snapshot of a namespace's /state, kept fresh
// by long-polling /watch, and lookups by partition and by key. Each state becomes an immutable
// Snapshot installed with one atomic pointer store, so a lookup never takes a lock and never
// waits for an update. Goroutines: the watch goroutine (one per Router) fetches and installs;
// lookups run on any goroutine.
package shardz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrNoSnapshot: no state has been loaded yet.
	ErrNoSnapshot = errors.New("shardz: no state loaded yet")
	// ErrNotFound: no such partition, or no partition holds the key's slot.
	ErrNotFound = errors.New("shardz: not found")
	// ErrNotSupported: a key lookup in a namespace that is neither hash nor range.
	ErrNotSupported = errors.New("shardz: key lookups need a hash or range namespace")
)

// RouteReplica is one replica of a partition as routing sees it.
type RouteReplica struct {
	Node       string
	Address    string
	NodeState  string // the node's state ("alive", "suspect", "dead", ...) when known
	Slot       int
	Role       string
	State      string // "adding", "serving", "dropping"
	Generation int64
}

// Route is a partition and its replicas (in slot order). Read-only: it belongs to a Snapshot.
type Route struct {
	Partition  string
	Generation int64
	Replicas   []RouteReplica
	// Target is the index in Replicas to send requests to: the serving primary, else the
	// first serving replica; -1 when none serves (for instance only an adding one exists).
	Target   int
	HasRange bool // range namespaces: the key range [RangeLo, RangeHi)
	RangeLo  string
	RangeHi  *string // nil: +infinity
	Routed   bool    // false for a range being created or deleted by a split or merge
}

// TargetReplica returns Replicas[Target], or nil.
func (r *Route) TargetReplica() *RouteReplica {
	if r.Target < 0 {
		return nil
	}
	return &r.Replicas[r.Target]
}

// Snapshot is one immutable state of a namespace. Safe for concurrent use.
type Snapshot struct {
	Namespace string
	Revision  int64
	Sharder   string // "replica", "hash", "range"
	Slots     uint32 // hash namespaces: the slot space
	routes    []Route
	byID      map[string]int
	slotTable []int32 // hash: slot -> index in routes, -1 for none
	ranges    []int   // range: indices of the routed ranges, sorted by RangeLo
}

// Partitions lists every partition, in id order.
func (s *Snapshot) Partitions() []Route { return s.routes }

// LookupPartition returns the partition's route.
func (s *Snapshot) LookupPartition(id string) (*Route, error) {
	i, ok := s.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &s.routes[i], nil
}

// LookupKey returns the route of key: by its hash tag's slot in a hash namespace, by the routed
// range holding it in a range namespace. slot is the key's slot (hash) or the range's index in
// key order (range).
func (s *Snapshot) LookupKey(key string) (route *Route, slot uint32, err error) {
	switch s.Sharder {
	case "hash":
		slot = KeySlot(key, s.Slots)
		i := s.slotTable[slot]
		if i < 0 {
			return nil, slot, ErrNotFound
		}
		return &s.routes[i], slot, nil
	case "range":
		// the last routed range whose lo <= key (bytewise; the ranges cover the key space)
		n := sort.Search(len(s.ranges), func(i int) bool { return s.routes[s.ranges[i]].RangeLo > key })
		if n == 0 {
			return nil, 0, ErrNotFound
		}
		return &s.routes[s.ranges[n-1]], uint32(n - 1), nil
	default:
		return nil, 0, ErrNotSupported
	}
}

type wireState struct {
	Namespace  string          `json:"namespace"`
	Revision   *int64          `json:"revision"`
	Sharder    string          `json:"sharder"`
	Slots      uint32          `json:"slots"`
	Unchanged  bool            `json:"unchanged"`
	Nodes      []wireStateNode `json:"nodes"`
	Partitions []struct {
		ID         string `json:"id"`
		Generation int64  `json:"generation"`
		Replicas   []struct {
			Node       string `json:"node"`
			Address    string `json:"address"`
			Slot       int    `json:"slot"`
			Role       string `json:"role"`
			State      string `json:"state"`
			Generation *int64 `json:"generation"`
		} `json:"replicas"`
		Slots [][2]int64 `json:"slots"`
		Range *struct {
			Lo string  `json:"lo"`
			Hi *string `json:"hi"`
		} `json:"range"`
		Routed *bool `json:"routed"`
	} `json:"partitions"`
}

type wireStateNode struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
}

// SnapshotFromState builds a snapshot from a /state body. sharder and slots are used when the
// state does not say them ("" and 0 otherwise). A malformed state is refused whole.
func SnapshotFromState(body []byte, sharder string, slots uint32) (*Snapshot, error) {
	var w wireState
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("shardz: state: %v", err)
	}
	if w.Revision == nil {
		return nil, errors.New("shardz: state: no revision")
	}
	s := &Snapshot{Namespace: w.Namespace, Revision: *w.Revision, Sharder: w.Sharder,
		Slots: w.Slots, byID: make(map[string]int, len(w.Partitions))}
	if s.Sharder == "" {
		s.Sharder = sharder
	}
	if s.Slots == 0 {
		s.Slots = slots
	}
	nodes := make(map[string]wireStateNode, len(w.Nodes))
	for _, n := range w.Nodes {
		nodes[n.ID] = n
	}
	for _, p := range w.Partitions {
		r := Route{Partition: p.ID, Generation: p.Generation, Target: -1, Routed: true}
		if p.Routed != nil {
			r.Routed = *p.Routed
		}
		if p.Range != nil {
			r.HasRange, r.RangeLo, r.RangeHi = true, p.Range.Lo, p.Range.Hi
		}
		for _, x := range p.Replicas {
			rr := RouteReplica{Node: x.Node, Address: x.Address, Slot: x.Slot, Role: x.Role,
				State: x.State, Generation: p.Generation}
			if x.Generation != nil {
				rr.Generation = *x.Generation
			}
			if n, ok := nodes[x.Node]; ok {
				rr.NodeState = n.State
				if rr.Address == "" {
					rr.Address = n.Address
				}
			}
			r.Replicas = append(r.Replicas, rr)
		}
		sort.SliceStable(r.Replicas, func(i, j int) bool { return r.Replicas[i].Slot < r.Replicas[j].Slot })
		for i, x := range r.Replicas {
			if x.State == "serving" && (r.Target < 0 || x.Role == "primary" && r.Replicas[r.Target].Role != "primary") {
				r.Target = i
			}
		}
		if _, dup := s.byID[p.ID]; dup || p.ID == "" {
			return nil, fmt.Errorf("shardz: state: partition %q twice or empty", p.ID)
		}
		s.byID[p.ID] = len(s.routes)
		s.routes = append(s.routes, r)
	}
	// keep routes in id order (the index maps follow)
	order := make([]int, len(s.routes))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return s.routes[order[a]].Partition < s.routes[order[b]].Partition })
	routes := make([]Route, len(s.routes))
	pos := make([]int, len(s.routes)) // old index -> new index
	for ni, oi := range order {
		routes[ni] = s.routes[oi]
		pos[oi] = ni
		s.byID[routes[ni].Partition] = ni
	}
	s.routes = routes
	switch s.Sharder {
	case "hash":
		if err := s.buildSlots(&w, pos); err != nil {
			return nil, err
		}
	case "range":
		if err := s.buildRanges(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Snapshot) buildSlots(w *wireState, pos []int) error {
	if s.Slots == 0 {
		for _, p := range w.Partitions {
			for _, run := range p.Slots {
				if run[1] > int64(s.Slots) && run[1] <= 1<<20 {
					s.Slots = uint32(run[1])
				}
			}
		}
	}
	if s.Slots == 0 || s.Slots&(s.Slots-1) != 0 || s.Slots > 1<<20 {
		return fmt.Errorf("shardz: state: slot space %d is not a power of two up to 2^20", s.Slots)
	}
	s.slotTable = make([]int32, s.Slots)
	for i := range s.slotTable {
		s.slotTable[i] = -1
	}
	for oi, p := range w.Partitions {
		for _, run := range p.Slots {
			if run[0] < 0 || run[1] > int64(s.Slots) || run[0] >= run[1] {
				return fmt.Errorf("shardz: state: partition %s: bad slot run [%d, %d)", p.ID, run[0], run[1])
			}
			for x := run[0]; x < run[1]; x++ {
				if s.slotTable[x] >= 0 {
					return fmt.Errorf("shardz: state: slot %d held twice", x)
				}
				s.slotTable[x] = int32(pos[oi])
			}
		}
	}
	return nil
}

func (s *Snapshot) buildRanges() error {
	for i := range s.routes {
		if s.routes[i].HasRange && s.routes[i].Routed {
			s.ranges = append(s.ranges, i)
		}
	}
	sort.Slice(s.ranges, func(a, b int) bool { return s.routes[s.ranges[a]].RangeLo < s.routes[s.ranges[b]].RangeLo })
	// the routed ranges must cover the key space exactly once
	for i, ri := range s.ranges {
		r := &s.routes[ri]
		if i == 0 && r.RangeLo != "" {
			return errors.New("shardz: state: the routed ranges do not start at -infinity")
		}
		last := i == len(s.ranges)-1
		if last != (r.RangeHi == nil) {
			return errors.New("shardz: state: the routed ranges do not end at +infinity once")
		}
		if !last && *r.RangeHi != s.routes[s.ranges[i+1]].RangeLo {
			return fmt.Errorf("shardz: state: range %s does not meet the next", r.Partition)
		}
	}
	return nil
}

// RouterConfig configures a router.
type RouterConfig struct {
	Coordinators   []string // "host:port" of each coordinator; required
	Namespace      string   // required
	Secret         string
	WatchTimeout   time.Duration // long-poll length; default 30 s
	RequestTimeout time.Duration // other requests; default 5 s
	Logf           func(format string, args ...interface{})
}

// Router keeps a namespace's snapshot fresh. Create with NewRouter, then Start.
type Router struct {
	cfg     RouterConfig
	coords  *coordinators
	watches *coordinators
	logf    func(string, ...interface{})
	snap    atomic.Pointer[Snapshot]
	sharder string
	slots   uint32

	mu      sync.Mutex
	changed chan struct{} // closed on every install
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

// NewRouter checks the config; nothing runs until Start.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if !validNamespace(cfg.Namespace) {
		return nil, fmt.Errorf("shardz: bad namespace %q", cfg.Namespace)
	}
	if cfg.WatchTimeout <= 0 {
		cfg.WatchTimeout = 30 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	coords, err := newCoordinators(cfg.Coordinators, cfg.Secret, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	watches, _ := newCoordinators(cfg.Coordinators, cfg.Secret, cfg.WatchTimeout+cfg.RequestTimeout)
	r := &Router{cfg: cfg, coords: coords, watches: watches, logf: cfg.Logf,
		changed: make(chan struct{}), stop: make(chan struct{})}
	if r.logf == nil {
		r.logf = log.Printf
	}
	return r, nil
}

// Start starts the watch goroutine and waits until the first state is loaded (or ctx ends;
// the goroutine keeps trying either way).
func (r *Router) Start(ctx context.Context) error {
	r.wg.Add(1)
	go r.watchLoop()
	return r.WaitRevision(ctx, 0)
}

// Snapshot returns the current snapshot, or nil before the first state.
func (r *Router) Snapshot() *Snapshot { return r.snap.Load() }

// LookupKey looks key up in the current snapshot.
func (r *Router) LookupKey(key string) (*Route, error) {
	s := r.snap.Load()
	if s == nil {
		return nil, ErrNoSnapshot
	}
	rt, _, err := s.LookupKey(key)
	return rt, err
}

// LookupPartition looks a partition up in the current snapshot.
func (r *Router) LookupPartition(id string) (*Route, error) {
	s := r.snap.Load()
	if s == nil {
		return nil, ErrNoSnapshot
	}
	return s.LookupPartition(id)
}

// WaitRevision waits until a snapshot of revision >= rev is installed (0: any snapshot).
func (r *Router) WaitRevision(ctx context.Context, rev int64) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if s := r.snap.Load(); s != nil && s.Revision >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.stop:
			return errors.New("shardz: router closed")
		}
	}
}

// Install replaces the snapshot with one built elsewhere (tests, tools).
func (r *Router) Install(s *Snapshot) {
	r.snap.Store(s)
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Close stops the watch goroutine.
func (r *Router) Close() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.mu.Unlock()
	close(r.stop)
	r.wg.Wait()
}

func (r *Router) nsPath() string { return "/v1/namespaces/" + url.PathEscape(r.cfg.Namespace) }

// loadState reads the namespace (when the state might not say its kind) and /state.
func (r *Router) loadState(ctx context.Context) error {
	if r.sharder == "" {
		body, err := r.coords.call(ctx, "GET", r.nsPath(), nil)
		if err != nil {
			return err
		}
		var ns struct {
			Sharder string `json:"sharder"`
			Slots   uint32 `json:"slots"`
			Config  struct {
				Sharder string `json:"sharder"`
				Slots   uint32 `json:"slots"`
			} `json:"config"`
		}
		_ = json.Unmarshal(body, &ns)
		r.sharder, r.slots = ns.Sharder, ns.Slots
		if r.sharder == "" {
			r.sharder, r.slots = ns.Config.Sharder, ns.Config.Slots
		}
	}
	body, err := r.coords.call(ctx, "GET", r.nsPath()+"/state", nil)
	if err != nil {
		return err
	}
	s, err := SnapshotFromState(body, r.sharder, r.slots)
	if err != nil {
		return err
	}
	r.Install(s) // a full state is installed whatever its revision (another coordinator's)
	return nil
}

func (r *Router) watchLoop() {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	backoff := 50 * time.Millisecond
	fresh := false // the next step must read the whole state
	for ctx.Err() == nil {
		var err error
		if !fresh {
			err = r.loadState(ctx)
		} else {
			err = r.watchOnce(ctx)
		}
		if err == nil {
			fresh, backoff = true, 50*time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r.logf("shardz: router %s: %v (retrying)", r.cfg.Namespace, err)
		fresh = false
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		if backoff *= 2; backoff > 2*time.Second {
			backoff = 2 * time.Second
		}
	}
}

func (r *Router) watchOnce(ctx context.Context) error {
	cur := r.snap.Load()
	path := fmt.Sprintf("%s/watch?revision=%d&timeout_ms=%d", r.nsPath(), cur.Revision,
		r.cfg.WatchTimeout.Milliseconds())
	body, err := r.watches.call(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	var head struct {
		Unchanged bool `json:"unchanged"`
	}
	if json.Unmarshal(body, &head) == nil && head.Unchanged {
		return nil
	}
	s, err := SnapshotFromState(body, r.sharder, r.slots)
	if err != nil {
		return err
	}
	r.Install(s)
	return nil
}
