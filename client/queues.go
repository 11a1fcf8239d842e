package client

// Queues: ordered members, each holding a unique counter, with blocking
// reads that wake when the queue changes.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/countd/countd/api"
)

// Bounds of a blocking queue read's wait, as the server applies them.
const (
	// DefaultQueueWait is used when WaitQueue is given no wait.
	DefaultQueueWait = 5 * time.Minute
	// MaxQueueWait is the longest wait the server accepts.
	MaxQueueWait = 10 * time.Minute
	// minQueueWait keeps a wait squeezed by a short deadline from
	// reaching 0, which would stop being a blocking read.
	minQueueWait = time.Millisecond
)

func queuePath(id string) string { return "/v1/queues/" + url.PathEscape(id) }

// Join puts process into queue with tags and returns its ticket. Join is
// idempotent: a process already queued gets its existing ticket (tags
// unchanged) with the queue's current fencing token. With InSession the
// member is ephemeral: it leaves when the session ends.
func (c *Client) Join(ctx context.Context, queue, process string, tags map[string]string, opts ...CallOption) (*api.Ticket, error) {
	o := applyOpts(opts)
	body, err := json.Marshal(api.JoinRequest{ProcessID: process, Tags: tags, Session: o.session})
	if err != nil {
		return nil, fmt.Errorf("encode join request: %w", err)
	}
	var out api.Ticket
	err = c.call(ctx, request{method: http.MethodPost, path: queuePath(queue) + "/join", body: body, write: true, key: o.key}, &out)
	return &out, err
}

// Leave takes process out of queue; later members' positions shift down,
// counters never change. A process not queued is a not_found *Error.
func (c *Client) Leave(ctx context.Context, queue, process string, opts ...CallOption) (*api.LeaveResult, error) {
	body, err := json.Marshal(api.LeaveRequest{ProcessID: process})
	if err != nil {
		return nil, fmt.Errorf("encode leave request: %w", err)
	}
	var out api.LeaveResult
	err = c.call(ctx, request{method: http.MethodPost, path: queuePath(queue) + "/leave", body: body, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// Queue reads a queue (linearizable unless Stale() is given) and returns it
// with the response's X-Countd-Index, the index to pass to WaitQueue to
// wait for the next change. A queue never written reads as empty.
func (c *Client) Queue(ctx context.Context, queue string, opts ...CallOption) (*api.Queue, uint64, error) {
	var out api.Queue
	index, err := c.callIndex(ctx, request{method: http.MethodGet, path: readPath(queuePath(queue), applyOpts(opts), nil)}, &out)
	if err != nil {
		return nil, 0, err
	}
	return &out, index, nil
}

// WaitQueue is a blocking read: it returns as soon as the queue's last
// write index exceeds afterIndex, or after wait with the queue unchanged,
// so callers compare what they get and loop with the returned index.
//
// wait defaults to DefaultQueueWait when not positive and is capped at
// MaxQueueWait. If ctx has a deadline, wait is shortened to end a little
// before it, so the server answers instead of the deadline cutting the
// request off; each attempt is allowed wait plus a margin rather than the
// usual AttemptTimeout. Retries and redirects work as for any read.
func (c *Client) WaitQueue(ctx context.Context, queue string, afterIndex uint64, wait time.Duration, opts ...CallOption) (*api.Queue, uint64, error) {
	wait = c.queueWait(ctx, wait)
	q := url.Values{}
	q.Set("index", strconv.FormatUint(afterIndex, 10))
	q.Set("wait", wait.String())
	var out api.Queue
	req := request{
		method:  http.MethodGet,
		path:    readPath(queuePath(queue), applyOpts(opts), q),
		timeout: wait + c.waitMargin(wait),
	}
	index, err := c.callIndex(ctx, req, &out)
	if err != nil {
		return nil, 0, err
	}
	return &out, index, nil
}

// waitMargin is how much longer than its wait a blocking read may take:
// the server's own answer time plus room for a slow network.
func (c *Client) waitMargin(wait time.Duration) time.Duration {
	return c.cfg.AttemptTimeout + wait/16
}

// queueWait picks the wait to send: the default, capped, and ending before
// ctx's deadline by the margin an attempt is given beyond its wait.
func (c *Client) queueWait(ctx context.Context, wait time.Duration) time.Duration {
	if wait <= 0 {
		wait = DefaultQueueWait
	}
	wait = min(wait, MaxQueueWait)
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		// Leave a quarter of what is left, at most one attempt timeout,
		// for the answer to come back.
		if budget := left - min(left/4, c.cfg.AttemptTimeout); budget < wait {
			wait = budget
		}
	}
	return max(wait, minQueueWait)
}

// QueueMember reads one member's ticket; a process not queued is a
// not_found *Error.
func (c *Client) QueueMember(ctx context.Context, queue, process string, opts ...CallOption) (*api.Ticket, error) {
	var out api.Ticket
	path := readPath(queuePath(queue)+"/members/"+url.PathEscape(process), applyOpts(opts), nil)
	err := c.call(ctx, request{method: http.MethodGet, path: path}, &out)
	return &out, err
}

// ConfigureQueue sets any of the queue's counter range and reuse policy;
// fields left nil keep their value. It never moves the fencing token and
// leaves existing members' counters alone.
func (c *Client) ConfigureQueue(ctx context.Context, queue string, req api.QueueConfigRequest, opts ...CallOption) (*api.Queue, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode queue config: %w", err)
	}
	var out api.Queue
	err = c.call(ctx, request{method: http.MethodPut, path: queuePath(queue), body: body, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// DeleteQueue removes a queue and its members; deleting an absent queue
// succeeds. A queue created again under the name starts from token 0.
func (c *Client) DeleteQueue(ctx context.Context, queue string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: queuePath(queue), write: true, key: applyOpts(opts).key}, nil)
}
