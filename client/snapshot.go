package client

// Backups: download the whole state as a backup file and restore one. The
// file is opaque here; the server checks its framing and checksum when it
// is restored.

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/countd/countd/api"
)

// transferTimeout bounds one backup or restore attempt when the caller's
// context has no deadline: a large state takes longer to move than
// Config.AttemptTimeout allows.
const transferTimeout = 30 * time.Minute

// Backup writes a backup of the whole cluster state to w and returns the
// applied index it reflects. It is a linearizable read (served by the
// leader, holding every write acknowledged before the call) unless Stale
// is given. Nothing is written to w before the leader starts answering; if
// the transfer then breaks, the error is final and w holds a partial file,
// which a restore refuses.
func (c *Client) Backup(ctx context.Context, w io.Writer, opts ...CallOption) (uint64, error) {
	req := request{method: http.MethodGet, path: readPath("/v1/snapshot", applyOpts(opts), nil), sink: w, timeout: transferTime(ctx)}
	return c.callIndex(ctx, req, nil)
}

// RestoreOptions choose how a backup is restored.
type RestoreOptions struct {
	// Force restores the backup verbatim. Without it nothing moves
	// backwards: each counter keeps the larger of its current and
	// backed-up value, queue high-water marks, fencing tokens and document
	// versions continue from the larger, and objects missing from the
	// backup are kept.
	Force bool
	// Advance is added to every counter and queue high-water mark after
	// the restore: for a backup restored into a cluster that cannot know
	// what was handed out after the backup was taken.
	Advance uint64
}

// Restore restores a backup file (as Backup wrote it) on the cluster, as
// one write: every node applies it. Like every write it carries an
// Idempotency-Key, so a retry after an unknown outcome never applies it
// twice.
func (c *Client) Restore(ctx context.Context, backup []byte, ro RestoreOptions, opts ...CallOption) (*api.RestoreResult, error) {
	query := url.Values{}
	if ro.Force {
		query.Set("force", "true")
	}
	if ro.Advance > 0 {
		query.Set("advance", strconv.FormatUint(ro.Advance, 10))
	}
	path := "/v1/snapshot"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	if backup == nil {
		backup = []byte{} // an empty body, which the server names as the problem
	}
	var out api.RestoreResult
	err := c.call(ctx, request{method: http.MethodPost, path: path, body: backup, contentType: api.ContentTypeBackup,
		write: true, key: applyOpts(opts).key, timeout: transferTime(ctx)}, &out)
	return &out, err
}

// transferTime is how long one attempt of a transfer may take: until ctx's
// deadline, or transferTimeout without one.
func transferTime(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return transferTimeout
}
