// The operator client (docs/PROTOCOL.md sections 3, 7, 8): namespaces, nodes, partitions,
// drain, move and the coordinator's status, as typed calls; Do for any other route. Each call
// is one blocking request (several coordinators are tried in turn). Safe for concurrent use.
package shardz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Coordinators []string // "host:port" of each coordinator; required
	Secret       string
	Timeout      time.Duration // per request; default 10 s
}

// Client calls the coordinator's operator API.
type Client struct {
	coords *coordinators
}

// NewClient makes a client; it connects on the first call.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	coords, err := newCoordinators(cfg.Coordinators, cfg.Secret, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	return &Client{coords: coords}, nil
}

// Do sends in (nil for no body) as JSON to method path and decodes a 2xx reply into out (nil
// to ignore it). A non-2xx reply is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out interface{}) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	reply, err := c.coords.call(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			return fmt.Errorf("shardz: %s %s: reply: %v", method, path, err)
		}
	}
	return nil
}

// NamespaceConfig creates a namespace; zero fields take the coordinator's defaults.
type NamespaceConfig struct {
	Name           string   `json:"name"`
	Sharder        string   `json:"sharder,omitempty"`
	Replicas       int      `json:"replicas,omitempty"`
	Roles          bool     `json:"roles,omitempty"`
	Consistency    string   `json:"consistency,omitempty"`
	PingIntervalMs int64    `json:"ping_interval_ms,omitempty"`
	DeadAfterMs    int64    `json:"dead_after_ms,omitempty"`
	LeaseMs        int64    `json:"lease_ms,omitempty"`
	Dimensions     []string `json:"dimensions,omitempty"`
	// Partitions is a count (int) or a list of ids ([]string); nil for none.
	Partitions interface{} `json:"partitions,omitempty"`
	Slots      int         `json:"slots,omitempty"`
}

// Namespace is a namespace as the coordinator shows it.
type Namespace struct {
	Name           string         `json:"name"`
	Sharder        string         `json:"sharder"`
	Replicas       int            `json:"replicas"`
	Roles          bool           `json:"roles"`
	Consistency    string         `json:"consistency"`
	PingIntervalMs int64          `json:"ping_interval_ms"`
	DeadAfterMs    int64          `json:"dead_after_ms"`
	LeaseMs        int64          `json:"lease_ms"`
	Dimensions     []string       `json:"dimensions"`
	Slots          int            `json:"slots"`
	Revision       int64          `json:"revision"`
	Nodes          map[string]int `json:"nodes"`      // count by state
	Partitions     int            `json:"partitions"` // count
	Missing        int            `json:"missing"`
	Moves          int            `json:"moves"`
}

// Node is a worker as the coordinator shows it.
type Node struct {
	ID       string             `json:"id"`
	Address  string             `json:"address"`
	Zone     string             `json:"zone"`
	State    string             `json:"state"`
	Capacity map[string]float64 `json:"capacity"`
	Load     map[string]float64 `json:"load"`
	Replicas int                `json:"replicas"`
	Leaving  bool               `json:"leaving"`
	Drained  bool               `json:"drained"`
	// Partitions is filled by Client.Node only.
	Partitions []NodePartition `json:"partitions"`
}

// NodePartition is a replica a node holds.
type NodePartition struct {
	Partition  string `json:"partition"`
	Slot       int    `json:"slot"`
	Role       string `json:"role"`
	State      string `json:"state"`
	Generation int64  `json:"generation"`
}

// Partition is a partition as GET .../partitions/{pid} shows it.
type Partition struct {
	Partition  string             `json:"partition"`
	Generation int64              `json:"generation"`
	Replicas   []PartitionReplica `json:"replicas"`
	Load       map[string]float64 `json:"load"`
	LoadAgeMs  *int64             `json:"load_age_ms"`
	MovedAgeMs *int64             `json:"moved_age_ms"`
	Revision   int64              `json:"revision"`
}

// PartitionReplica is one replica of a Partition.
type PartitionReplica struct {
	Node       string `json:"node"`
	Address    string `json:"address"`
	Slot       int    `json:"slot"`
	Role       string `json:"role"`
	State      string `json:"state"`
	Generation int64  `json:"generation"`
	MovingTo   string `json:"moving_to,omitempty"`
}

// CoordinatorStatus is GET /v1/status (more fields in HA mode: use Do for them).
type CoordinatorStatus struct {
	Version    string `json:"version"`
	Role       string `json:"role"`
	Acting     bool   `json:"acting"`
	Store      string `json:"store"`
	Fsync      string `json:"fsync"`
	Namespaces int    `json:"namespaces"`
	UptimeMs   int64  `json:"uptime_ms"`
	Listen     string `json:"listen"`
	ID         string `json:"id"`
}

func nsPath(ns string) string { return "/v1/namespaces/" + url.PathEscape(ns) }

// Status describes the coordinator that answers.
func (c *Client) Status(ctx context.Context) (*CoordinatorStatus, error) {
	var st CoordinatorStatus
	return &st, c.Do(ctx, "GET", "/v1/status", nil, &st)
}

// CreateNamespace creates a namespace.
func (c *Client) CreateNamespace(ctx context.Context, cfg NamespaceConfig) (*Namespace, error) {
	var ns Namespace
	return &ns, c.Do(ctx, "POST", "/v1/namespaces", cfg, &ns)
}

// Namespaces lists the namespaces.
func (c *Client) Namespaces(ctx context.Context) ([]Namespace, error) {
	var r struct {
		Namespaces []Namespace `json:"namespaces"`
	}
	return r.Namespaces, c.Do(ctx, "GET", "/v1/namespaces", nil, &r)
}

// Namespace shows one namespace.
func (c *Client) Namespace(ctx context.Context, name string) (*Namespace, error) {
	var ns Namespace
	return &ns, c.Do(ctx, "GET", nsPath(name), nil, &ns)
}

// DeleteNamespace deletes a namespace (its workers are told to delete everything).
func (c *Client) DeleteNamespace(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", nsPath(name), nil, nil)
}

// AddPartitions adds partitions by id.
func (c *Client) AddPartitions(ctx context.Context, ns string, ids []string) error {
	return c.Do(ctx, "POST", nsPath(ns)+"/partitions", map[string][]string{"ids": ids}, nil)
}

// Nodes lists a namespace's nodes and the revision they are as of.
func (c *Client) Nodes(ctx context.Context, ns string) ([]Node, int64, error) {
	var r struct {
		Nodes    []Node `json:"nodes"`
		Revision int64  `json:"revision"`
	}
	err := c.Do(ctx, "GET", nsPath(ns)+"/nodes", nil, &r)
	return r.Nodes, r.Revision, err
}

// Node shows one node with the replicas it holds.
func (c *Client) Node(ctx context.Context, ns, id string) (*Node, error) {
	var n Node
	return &n, c.Do(ctx, "GET", nsPath(ns)+"/nodes/"+url.PathEscape(id), nil, &n)
}

// Partition shows one partition: its replicas, load and revision.
func (c *Client) Partition(ctx context.Context, ns, pid string) (*Partition, error) {
	var p Partition
	return &p, c.Do(ctx, "GET", nsPath(ns)+"/partitions/"+url.PathEscape(pid), nil, &p)
}

// Drain moves every replica off a node; it stays registered.
func (c *Client) Drain(ctx context.Context, ns, id string) (*Node, error) {
	var n Node
	return &n, c.Do(ctx, "POST", nsPath(ns)+"/nodes/"+url.PathEscape(id)+"/drain", nil, &n)
}

// Undrain makes a drained node take its share again.
func (c *Client) Undrain(ctx context.Context, ns, id string) (*Node, error) {
	var n Node
	return &n, c.Do(ctx, "POST", nsPath(ns)+"/nodes/"+url.PathEscape(id)+"/undrain", nil, &n)
}

// Move moves one replica slot of a partition to node to (make-before-break, reason operator).
func (c *Client) Move(ctx context.Context, ns, pid string, slot int, to string) (*Partition, error) {
	var p Partition
	in := struct {
		Slot int    `json:"slot"`
		To   string `json:"to"`
	}{slot, to}
	return &p, c.Do(ctx, "POST", nsPath(ns)+"/partitions/"+url.PathEscape(pid)+"/move", in, &p)
}
