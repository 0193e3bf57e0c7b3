// The worker side of the protocol's messages (docs/PROTOCOL.md 4.2, 4.3): parses and validates
// a ping or an assignment (full or delta) addressed to this worker. Pure: no goroutine, socket
// or clock; every field is bounded; a message that fails any check is refused whole, with a
// reason, so it changes nothing. Runs on whichever goroutine hands it a body.
package shardz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

const (
	maxBody     = 1 << 20  // the largest message the worker endpoint accepts
	maxLeaseMs  = 86400000 // a day: anything longer is a typo
	maxSlot     = 255
	maxIDLen    = 255
	maxNameLen  = 63
	maxBoundLen = 1024
)

// validID: 1-max bytes of [A-Za-z0-9._:-] (docs/PROTOCOL.md section 1).
func validID(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' ||
			c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// validNamespace: 1-63 bytes of [a-z0-9._-], starting with a letter or digit.
func validNamespace(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// wireReplica is one replica entry of an assignment.
type wireReplica struct {
	Partition  string
	Slot       int
	Role       string
	State      string
	Generation int64
	RangeLo    string
	RangeHi    *string // nil: +infinity
	HasRange   bool
	FromNode   string // state transfer (PROTOCOL.md 4.3): the node it comes from ("": none)
	FromAddr   string // and its address, host:port
}

// assignMsg is a parsed assignment. Replicas and Removed are sorted by partition id.
type assignMsg struct {
	Revision     int64
	LeaseMs      int64 // 0: no lease granted
	LeaseStamp   int64 // -1 not said: the worker's own clock (ms) the grant runs from
	Term         int64 // -1 not said: the sending coordinator's leadership (PROTOCOL.md 4.2)
	Consistency  int   // -1 not said, 0 available, 1 strict
	Released     bool
	Delta        bool
	BaseRevision int64
	ResyncFrom   int64 // full only: applied even if older, when the last applied is this one
	Replicas     []wireReplica
	Removed      []string
}

// pingMsg is a parsed ping.
type pingMsg struct {
	Revision    int64
	LeaseMs     int64
	LeaseStamp  int64 // as in assignMsg
	Term        int64 // as in assignMsg
	Consistency int
}

type object map[string]json.RawMessage

// noDuplicateKeys walks the JSON text and refuses an object with a key twice (the C library
// loads with JSON_REJECT_DUPLICATES: two readers must never see two different messages).
func noDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				ks, _ := k.(string)
				if seen[ks] {
					return fmt.Errorf("duplicate key %q", ks)
				}
				seen[ks] = true
				if err := walk(); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	return walk()
}

// loadAddressed parses body as a JSON object addressed to (ns, node).
func loadAddressed(body []byte, ns, node string) (object, *protoError) {
	if len(body) == 0 {
		return nil, perr("EINVAL", "empty body")
	}
	var root object
	if err := json.Unmarshal(body, &root); err != nil || root == nil {
		if err == nil {
			err = fmt.Errorf("null")
		}
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || err.Error() == "null" {
			return nil, perr("EINVAL", "malformed JSON: %v", err)
		}
		return nil, perr("EINVAL", "the body is not a JSON object")
	}
	if err := noDuplicateKeys(body); err != nil {
		return nil, perr("EINVAL", "malformed JSON: %v", err)
	}
	mns, ok1 := root.str("namespace")
	mnode, ok2 := root.str("node")
	if !ok1 || !ok2 {
		return nil, perr("EINVAL", `"namespace" and "node" are required strings`)
	}
	if mns != ns || mnode != node {
		return nil, perr("EPROTO", "addressed to %.63s/%.255s, this is %s/%s", mns, mnode, ns, node)
	}
	return root, nil
}

func (o object) has(k string) bool { _, ok := o[k]; return ok }

func (o object) isNull(k string) bool {
	v, ok := o[k]
	return !ok || string(bytes.TrimSpace(v)) == "null"
}

func (o object) str(k string) (string, bool) {
	v, ok := o[k]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// integer reads k as a JSON integer literal (no fraction, no exponent) in [lo, hi].
func (o object) integer(k string, lo, hi int64) (int64, bool) {
	v, ok := o[k]
	if !ok {
		return 0, false
	}
	return parseInteger(v, lo, hi)
}

func parseInteger(v json.RawMessage, lo, hi int64) (int64, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || bytes.ContainsAny(t, ".eE\"") {
		return 0, false
	}
	x, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil || x < lo || x > hi {
		return 0, false
	}
	return x, true
}

func consistencyOf(o object) int {
	if !o.has("consistency") {
		return -1
	}
	if s, _ := o.str("consistency"); s == "available" {
		return 0
	}
	return 1
}

func parseCommon(root object) (rev, lease, stamp int64, e *protoError) {
	rev, ok := root.integer("revision", 0, 1<<63-1)
	if !ok {
		return 0, 0, 0, perr("EINVAL", `"revision" must be an integer >= 0`)
	}
	if root.has("lease_ms") {
		if lease, ok = root.integer("lease_ms", 1, maxLeaseMs); !ok {
			return 0, 0, 0, perr("EINVAL", `"lease_ms" must be an integer in [1, %d]`, maxLeaseMs)
		}
	}
	stamp = -1
	if root.has("lease_stamp") {
		if stamp, ok = root.integer("lease_stamp", 0, 1<<63-1); !ok {
			return 0, 0, 0, perr("EINVAL", `"lease_stamp" must be an integer >= 0`)
		}
	}
	return rev, lease, stamp, nil
}

// parseTerm reads "term" (optional, -1 when absent).
func parseTerm(root object) (int64, *protoError) {
	if !root.has("term") {
		return -1, nil
	}
	t, ok := root.integer("term", 0, 1<<63-1)
	if !ok {
		return 0, perr("EINVAL", `"term" must be an integer >= 0`)
	}
	return t, nil
}

func parsePing(body []byte, ns, node string) (pingMsg, *protoError) {
	root, e := loadAddressed(body, ns, node)
	if e != nil {
		return pingMsg{}, e
	}
	rev, lease, stamp, e := parseCommon(root)
	if e != nil {
		return pingMsg{}, e
	}
	term, e := parseTerm(root)
	if e != nil {
		return pingMsg{}, e
	}
	return pingMsg{Revision: rev, LeaseMs: lease, LeaseStamp: stamp, Term: term,
		Consistency: consistencyOf(root)}, nil
}

func parseName(rep object, key, dflt string, i int) (string, *protoError) {
	if !rep.has(key) {
		return dflt, nil
	}
	s, ok := rep.str(key)
	if !ok || !validID(s, maxNameLen) {
		return "", perr("EINVAL", "replicas[%d].%s must be a name of 1-%d id characters", i, key,
			maxNameLen)
	}
	return s, nil
}

func parseBound(rng object, key string, i int) (*string, *protoError) {
	if rng.isNull(key) {
		return nil, nil
	}
	s, ok := rng.str(key)
	if !ok || len(s) > maxBoundLen || bytes.IndexByte([]byte(s), 0) >= 0 {
		return nil, perr("EINVAL", "replicas[%d].range.%s must be a string of at most %d bytes", i,
			key, maxBoundLen)
	}
	return &s, nil
}

func parseReplica(raw json.RawMessage, i int) (wireReplica, *protoError) {
	var r wireReplica
	var rep object
	if json.Unmarshal(raw, &rep) != nil || rep == nil {
		return r, perr("EINVAL", "replicas[%d] is not an object", i)
	}
	pid, ok := rep.str("partition")
	if !ok || !validID(pid, maxIDLen) {
		return r, perr("EINVAL", "replicas[%d].partition must be an id (1-255 of [A-Za-z0-9._:-])", i)
	}
	r.Partition = pid
	if r.Generation, ok = rep.integer("generation", 0, 1<<63-1); !ok {
		return r, perr("EINVAL", "replicas[%d].generation must be an integer >= 0", i)
	}
	if rep.has("slot") {
		s, ok := rep.integer("slot", 0, maxSlot)
		if !ok {
			return r, perr("EINVAL", "replicas[%d].slot must be an integer in [0, %d]", i, maxSlot)
		}
		r.Slot = int(s)
	}
	var e *protoError
	if r.Role, e = parseName(rep, "role", "none", i); e != nil {
		return r, e
	}
	if r.State, e = parseName(rep, "state", "serving", i); e != nil {
		return r, e
	}
	if !rep.isNull("range") {
		var rng object
		if json.Unmarshal(rep["range"], &rng) != nil || rng == nil {
			return r, perr("EINVAL", "replicas[%d].range must be an object {lo, hi}", i)
		}
		lo, e := parseBound(rng, "lo", i)
		if e != nil {
			return r, e
		}
		if r.RangeHi, e = parseBound(rng, "hi", i); e != nil {
			return r, e
		}
		if lo != nil {
			r.RangeLo = *lo
		}
		r.HasRange = true
	}
	if !rep.isNull("from") {
		var from object
		node, okN := "", false
		addr, okA := "", false
		if json.Unmarshal(rep["from"], &from) == nil && from != nil {
			node, okN = from.str("node")
			addr, okA = from.str("address")
		}
		if !okN || !validID(node, maxIDLen) || !okA || addr == "" || len(addr) > 261 {
			return r, perr("EINVAL", "replicas[%d].from must be {\"node\": id, \"address\": host:port}", i)
		}
		r.FromNode, r.FromAddr = node, addr
	}
	return r, nil
}

func parseAssign(body []byte, ns, node string) (*assignMsg, *protoError) {
	root, e := loadAddressed(body, ns, node)
	if e != nil {
		return nil, e
	}
	a := &assignMsg{}
	if a.Revision, a.LeaseMs, a.LeaseStamp, e = parseCommon(root); e != nil {
		return nil, e
	}
	if a.Term, e = parseTerm(root); e != nil {
		return nil, e
	}
	a.Consistency = consistencyOf(root)
	if root.has("released") {
		if err := json.Unmarshal(root["released"], &a.Released); err != nil || root.isNull("released") {
			return nil, perr("EINVAL", `"released" must be a boolean`)
		}
	}
	if !(a.Released && !root.has("replicas")) { // a release may leave the list out
		var reps []json.RawMessage
		if root.isNull("replicas") || json.Unmarshal(root["replicas"], &reps) != nil {
			return nil, perr("EINVAL", `"replicas" must be an array`)
		}
		if a.Released && len(reps) > 0 {
			return nil, perr("EPROTO", "a release must carry no replicas")
		}
		a.Replicas = make([]wireReplica, 0, len(reps))
		for i, raw := range reps {
			r, e := parseReplica(raw, i)
			if e != nil {
				return nil, e
			}
			a.Replicas = append(a.Replicas, r)
		}
		sort.Slice(a.Replicas, func(i, j int) bool {
			return a.Replicas[i].Partition < a.Replicas[j].Partition
		})
		for i := 1; i < len(a.Replicas); i++ {
			if a.Replicas[i-1].Partition == a.Replicas[i].Partition {
				return nil, perr("EPROTO", "partition %s is listed twice", a.Replicas[i].Partition)
			}
		}
	}
	if e := parseDelta(root, a); e != nil {
		return nil, e
	}
	return a, nil
}

// parseDelta reads a delta's "base_revision" and "removed" (docs/PROTOCOL.md 4.3). A message
// with neither is a full assignment.
func parseDelta(root object, a *assignMsg) *protoError {
	if root.has("resync_from") {
		r, ok := root.integer("resync_from", 1, 1<<63-1)
		if !ok || root.has("base_revision") {
			return perr("EINVAL", `"resync_from" must be an integer >= 1, on a full assignment`)
		}
		a.ResyncFrom = r
	}
	if !root.has("base_revision") {
		if root.has("removed") {
			return perr("EPROTO", `"removed" is only for a delta (with "base_revision")`)
		}
		return nil
	}
	base, ok := root.integer("base_revision", 0, 1<<63-1)
	if !ok {
		return perr("EINVAL", `"base_revision" must be an integer >= 0`)
	}
	if base >= a.Revision {
		return perr("EINVAL", `"base_revision" (%d) must be below "revision" (%d)`, base, a.Revision)
	}
	a.BaseRevision, a.Delta = base, true
	if a.Released {
		return perr("EPROTO", "a release is never a delta")
	}
	if !root.has("removed") {
		return nil
	}
	var rm []json.RawMessage
	if root.isNull("removed") || json.Unmarshal(root["removed"], &rm) != nil {
		return perr("EINVAL", `"removed" must be an array of partition ids`)
	}
	for i, raw := range rm {
		var pid string
		if json.Unmarshal(raw, &pid) != nil || !validID(pid, maxIDLen) {
			return perr("EINVAL", "removed[%d] must be an id (1-255 of [A-Za-z0-9._:-])", i)
		}
		a.Removed = append(a.Removed, pid)
	}
	sort.Strings(a.Removed)
	for i, pid := range a.Removed {
		if i > 0 && a.Removed[i-1] == pid {
			return perr("EPROTO", "partition %s is removed twice", pid)
		}
		if a.find(pid) != nil {
			return perr("EPROTO", "partition %s is both listed and removed", pid)
		}
	}
	return nil
}

// find returns the listed replica of partition, or nil.
func (a *assignMsg) find(partition string) *wireReplica {
	i := sort.Search(len(a.Replicas), func(i int) bool { return a.Replicas[i].Partition >= partition })
	if i < len(a.Replicas) && a.Replicas[i].Partition == partition {
		return &a.Replicas[i]
	}
	return nil
}
