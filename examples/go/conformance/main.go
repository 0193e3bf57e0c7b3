// The Go module's conformance driver (tests/conformance/README.md, "The driver contract"): an
// example worker on shardz.Server that logs its hooks as JSON event lines and takes commands on
// stdin, a router on shardz.Router, and the key -> slot vectors of shardz.KeySlot. Built by
// tests/conformance/drivers/go prepare. Goroutines: main reads stdin; the library's hook
// goroutine calls the hooks (events are written under a mutex, one write per line).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"shardz"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: shardz-conformance-go worker|router|hash ... (tests/conformance/README.md)")
	os.Exit(2)
}

func say(format string, args ...interface{}) {
	fmt.Fprintf(os.Stdout, format+"\n", args...) // os.Stdout is unbuffered
}

// monoMs reads CLOCK_MONOTONIC (the runner compares it with its own clock).
func monoMs() float64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	return float64(ts.Sec)*1000 + float64(ts.Nsec)/1e6
}

// options parses --key value pairs; keys in multi may repeat.
func options(args []string, multi ...string) (map[string]string, map[string][]string) {
	one, many := map[string]string{}, map[string][]string{}
	if len(args)%2 != 0 {
		usage()
	}
	for i := 0; i < len(args); i += 2 {
		k := strings.TrimPrefix(args[i], "--")
		if k == args[i] {
			usage()
		}
		repeat := false
		for _, m := range multi {
			repeat = repeat || m == k
		}
		if repeat {
			many[k] = append(many[k], args[i+1])
		} else {
			one[k] = args[i+1]
		}
	}
	return one, many
}

type events struct {
	mu        sync.Mutex
	f         *os.File
	lapseOpen bool
}

func (e *events) put(fields map[string]interface{}) {
	fields["t_ms"] = monoMs()
	b, _ := json.Marshal(fields)
	e.f.Write(append(b, '\n')) // one unbuffered write: on disk before the hook returns
}

func (e *events) simple(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.put(map[string]interface{}{"ev": ev})
}

func (e *events) replica(ev string, r shardz.Replica) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev == "serve" {
		e.lapseOpen = false
	} else if r.Cause == shardz.CauseLease && !e.lapseOpen {
		e.put(map[string]interface{}{"ev": "lease_lapse"})
		e.lapseOpen = true
	}
	f := map[string]interface{}{"ev": ev, "ns": r.Namespace, "partition": r.Partition,
		"slot": r.Slot, "role": r.Role, "generation": r.Generation}
	if r.HasRange {
		f["lo"] = r.RangeLo
		f["hi"] = r.RangeHi // nil marshals as null: +infinity
	}
	if ev == "delete" {
		f["cause"] = r.Cause.String()
	}
	e.put(f)
}

func worker(args []string) int {
	o, m := options(args, "capacity")
	for _, k := range []string{"coordinator", "ns", "node", "listen", "events"} {
		if o[k] == "" {
			usage()
		}
	}
	f, err := os.OpenFile(o["events"], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ev := &events{f: f}
	var capacity map[string]float64
	for _, c := range m["capacity"] {
		dim, v, ok := strings.Cut(c, "=")
		x, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			usage()
		}
		if capacity == nil {
			capacity = map[string]float64{}
		}
		capacity[dim] = x
	}
	w, err := shardz.NewServer(shardz.ServerConfig{
		Coordinators: strings.Split(o["coordinator"], ","),
		Namespace:    o["ns"], NodeID: o["node"], Listen: o["listen"], Zone: o["zone"],
		Capacity: capacity, Secret: o["secret"],
		ServeFn:  func(r shardz.Replica) error { ev.replica("serve", r); return nil },
		DeleteFn: func(r shardz.Replica) error { ev.replica("delete", r); return nil },
	})
	if err == nil {
		err = w.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		w.Close() // stop without leaving
		os.Exit(0)
	}()
	if err := w.WaitRegistered(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ev.simple("registered")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := sc.Text()
		fl := strings.Fields(line)
		switch {
		case len(fl) == 5 && fl[0] == "load":
			v, err := strconv.ParseFloat(fl[4], 64)
			if err == nil {
				err = w.ReportLoad(fl[2], fl[3], v)
			}
			reply(err)
		case len(fl) == 4 && fl[0] == "split":
			reply(w.ReportSplitKey(fl[2], fl[3]))
		case len(fl) == 3 && fl[0] == "lease_ok":
			say("%v", w.LeaseOK())
		case line == "leave":
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := w.Leave(ctx)
			cancel()
			if err != nil {
				say("error %v", err)
				w.Close()
				return 1
			}
			ev.simple("left")
			say("left")
			w.Close()
			return 0
		default:
			say("error unknown command: %s", line)
		}
	}
	w.Close()
	return 0
}

func reply(err error) {
	if err != nil {
		say("error %v", err)
	} else {
		say("ok")
	}
}

type node struct {
	Node string `json:"node"`
	Addr string `json:"addr"`
	Role string `json:"role"`
}

func router(args []string) int {
	o, _ := options(args)
	if o["coordinator"] == "" || o["ns"] == "" {
		usage()
	}
	r, err := shardz.NewRouter(shardz.RouterConfig{Coordinators: strings.Split(o["coordinator"], ","),
		Namespace: o["ns"], Secret: o["secret"]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err = r.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "router: no first snapshot:", err)
		return 1
	}
	say("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "key", "partition":
			snap := r.Snapshot() // one snapshot per answer
			out := map[string]interface{}{cmd: arg, "revision": snap.Revision}
			var route *shardz.Route
			var slot uint32
			if cmd == "key" {
				route, slot, err = snap.LookupKey(arg)
			} else {
				route, err = snap.LookupPartition(arg)
			}
			if err != nil {
				out["error"] = "ENOENT"
			} else {
				if cmd == "key" {
					out["partition"] = route.Partition
					if snap.Sharder == "hash" {
						out["slot"] = slot
					}
				}
				nodes := []node{}
				for _, x := range route.Replicas {
					if x.State == "serving" {
						nodes = append(nodes, node{x.Node, x.Address, x.Role})
					}
				}
				out["nodes"] = nodes
			}
			b, _ := json.Marshal(out)
			say("%s", b)
		case "wait":
			rev, err := strconv.ParseInt(arg, 10, 64)
			if err == nil {
				err = r.WaitRevision(context.Background(), rev)
			}
			reply(err)
		case "revision":
			say("%d", r.Snapshot().Revision)
		default:
			say("error unknown command: %s", sc.Text())
		}
	}
	r.Close()
	return 0
}

func hashes(args []string) int {
	slots := uint64(16384)
	if len(args) >= 2 && args[0] == "--slots" {
		var err error
		if slots, err = strconv.ParseUint(args[1], 10, 32); err != nil {
			usage()
		}
		args = args[2:]
	}
	for _, k := range args {
		b, _ := json.Marshal(map[string]interface{}{"key": k,
			"hash": fmt.Sprintf("%016x", shardz.KeyHash(k)), "slot": shardz.KeySlot(k, uint32(slots))})
		say("%s", b)
	}
	return 0
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "worker":
		os.Exit(worker(os.Args[2:]))
	case "router":
		os.Exit(router(os.Args[2:]))
	case "hash":
		os.Exit(hashes(os.Args[2:]))
	default:
		usage()
	}
}
