// shardz-kv-go: a sharded in-memory key-value worker on the Go module, the Go twin of
// examples/kv (shardz-kv). It serves GET/PUT /kv/<key> for keys whose partition it serves (the
// router's slot table says which partition a key is in) and answers 409 with the owner for the
// others; the shardz endpoint is mounted on the same port. Goroutines: net/http's per request,
// the library's hook goroutine (serve/delete take the store's lock).
//
//	go run ./kv --id w1 --listen 127.0.0.1:9201 --coordinator 127.0.0.1:7557 --namespace kv
package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"shardz"
)

// store holds the data of the partitions this worker serves, by partition then key.
type store struct {
	mu    sync.RWMutex
	parts map[string]map[string]string
	gen   map[string]int64 // the generation each partition is served at (fencing)
}

func main() {
	id := flag.String("id", "w1", "node id")
	listen := flag.String("listen", "127.0.0.1:9201", "host:port for the API and the shardz endpoint")
	coord := flag.String("coordinator", "127.0.0.1:7557", "coordinator(s), comma-separated")
	ns := flag.String("namespace", "kv", "namespace (a hash namespace)")
	flag.Parse()

	st := &store{parts: map[string]map[string]string{}, gen: map[string]int64{}}
	worker, err := shardz.NewServer(shardz.ServerConfig{
		Coordinators: strings.Split(*coord, ","), Namespace: *ns, NodeID: *id, Address: *listen,
		ServeFn: func(r shardz.Replica) error {
			st.mu.Lock()
			defer st.mu.Unlock()
			if st.parts[r.Partition] == nil {
				st.parts[r.Partition] = map[string]string{} // a moved partition starts empty here
			}
			st.gen[r.Partition] = r.Generation
			return nil
		},
		DeleteFn: func(r shardz.Replica) error {
			st.mu.Lock()
			defer st.mu.Unlock()
			delete(st.parts, r.Partition)
			delete(st.gen, r.Partition)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	router, err := shardz.NewRouter(shardz.RouterConfig{Coordinators: strings.Split(*coord, ","), Namespace: *ns})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/shardz/", worker.Handler)
	mux.HandleFunc("/kv/", func(w http.ResponseWriter, req *http.Request) {
		key := strings.TrimPrefix(req.URL.Path, "/kv/")
		route, err := router.LookupKey(key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		data := st.parts[route.Partition]
		if data == nil || !worker.LeaseOK() {
			w.WriteHeader(http.StatusConflict)
			owner := map[string]string{"code": "ESTALE", "partition": route.Partition}
			if t := route.TargetReplica(); t != nil {
				owner["owner"], owner["address"] = t.Node, t.Address
			}
			_ = json.NewEncoder(w).Encode(owner)
			return
		}
		switch req.Method {
		case http.MethodGet:
			v, ok := data[key]
			if !ok {
				http.NotFound(w, req)
				return
			}
			io.WriteString(w, v)
		case http.MethodPut:
			b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
			data[key] = string(b)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	srv := &http.Server{Addr: *listen, Handler: mux}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	if err := worker.Start(); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := router.Start(ctx); err != nil {
		log.Fatal(err)
	}
	cancel()
	log.Printf("shardz-kv-go %s serving on %s", *id, *listen)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	<-sigs
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := worker.Leave(ctx); err != nil { // partitions move away first
		log.Printf("leave: %v", err)
	}
	worker.Close()
	router.Close()
	_ = srv.Shutdown(context.Background())
}
