// Requests to the coordinator(s): one list of addresses (several for HA, docs/PROTOCOL.md
// section 10), the secret, a bounded reply. A request goes to the coordinator that answered
// last; a connection that could not be made (the request never left) or a 503 ENOTLEADER
// (nothing changed) moves on to the next one at once. Safe for concurrent use.
package shardz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

const maxReply = 256 << 20 // the largest coordinator reply read

type coordinators struct {
	bases  []string // "http://host:port"
	secret string
	http   *http.Client
	cur    atomic.Int32 // index of the coordinator that answered last
}

// parseCoordinators accepts "host:port" or "http://host:port" items; an item may itself be a
// comma-separated list.
func parseCoordinators(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, a := range strings.Split(item, ",") {
			a = strings.TrimSpace(a)
			a = strings.TrimSuffix(strings.TrimPrefix(a, "http://"), "/")
			if a == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("shardz: coordinator address %q: %v", a, err)
			}
			out = append(out, "http://"+a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("shardz: no coordinator address")
	}
	return out, nil
}

func newCoordinators(list []string, secret string, timeout time.Duration) (*coordinators, error) {
	bases, err := parseCoordinators(list)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // coordinators are reached directly
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	return &coordinators{bases: bases, secret: secret,
		http: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// neverSent: the connection could not be made, so the coordinator saw nothing.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// do sends one request (body nil for none) and returns the status and the body. An error means
// no coordinator answered; any status is an answer.
func (c *coordinators) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	start := int(c.cur.Load())
	var lastErr error
	for i := 0; i < len(c.bases); i++ {
		idx := (start + i) % len(c.bases)
		status, reply, err := c.once(ctx, c.bases[idx], method, path, body)
		last := i == len(c.bases)-1
		if err != nil {
			lastErr = err
			if ctx.Err() == nil && neverSent(err) && !last {
				continue
			}
			return 0, nil, err
		}
		if status == 503 && !last && bytes.Contains(reply, []byte("ENOTLEADER")) {
			continue
		}
		c.cur.Store(int32(idx))
		return status, reply, nil
	}
	return 0, nil, lastErr
}

func (c *coordinators) once(ctx context.Context, base, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return 0, nil, err
	}
	if len(reply) > maxReply {
		return 0, nil, fmt.Errorf("shardz: reply over %d bytes", maxReply)
	}
	return resp.StatusCode, reply, nil
}

// call is do plus: a non-2xx status becomes an *APIError.
func (c *coordinators) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	status, reply, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, newAPIError(status, reply)
	}
	return reply, nil
}
