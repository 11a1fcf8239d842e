package httpapi

// Backups: GET /v1/snapshot streams a consistent copy of the whole state as
// a backup file; POST /v1/snapshot restores one on the running cluster as a
// single log command, merged so that nothing moves backwards unless
// ?force=true (SPEC §6 "Snapshots").

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

const snapshotPath = "/v1/snapshot"

// restoreEntryRoom is what a restore's log entry carries besides the
// backup: the command header, an idempotency key, the flags.
const restoreEntryRoom = 4 << 10

// getSnapshot streams a backup. Linearizable by default, so the backup
// holds every write acknowledged before the request; ?consistency=stale
// takes this node's copy as it is.
func (s *Server) getSnapshot(c echo.Context) error {
	if err := s.read(c); err != nil {
		return err
	}
	// A point-in-time copy taken under the state's lock, encoded while
	// writes go on.
	snap := s.node.State().Snapshot()
	h := backupHeader{Cluster: s.node.ClusterName(), Node: s.node.ID(), Index: snap.AppliedIndex(), Created: time.Now().UTC()}
	w := c.Response()
	setIndex(c, snap.AppliedIndex())
	w.Header().Set(echo.HeaderContentType, api.ContentTypeBackup)
	w.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="countd-%s-%d.backup"`, h.Cluster, h.Index))
	w.WriteHeader(http.StatusOK)
	if err := writeBackup(w, h, snap); err != nil {
		// The status is sent: the only way left to tell the client is to
		// cut the connection, so it sees a broken transfer instead of a
		// short file that ends cleanly.
		s.logger.Warn("backup download failed", "index", h.Index, "error", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// restoreSnapshot restores an uploaded backup. ?force=true restores it
// verbatim; ?advance=N then adds N to every counter and queue high-water
// mark.
func (s *Server) restoreSnapshot(c echo.Context) error {
	force, err := boolParam(c, "force")
	if err != nil {
		return err
	}
	advance, _, err := uintParam(c, "advance")
	if err != nil {
		return err
	}
	// One restore at a time: each holds a whole backup in memory, twice
	// while it is decoded, and a second one could only be queued behind
	// the first in the log anyway.
	select {
	case s.restoring <- struct{}{}:
		defer func() { <-s.restoring }()
	default:
		c.Response().Header().Set("Retry-After", "5")
		return refuse(api.CodeNoLeader, "another backup is being restored on this node; retry when it is done")
	}
	// Read as it arrives: nothing is allocated for what a Content-Length
	// only promises.
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	h, payload, err := readBackup(body)
	if err != nil {
		return badRequest("%v", err)
	}
	res, err := s.apply(c, fsm.RestoreBackup{Snapshot: payload, Force: force, Advance: advance})
	if err != nil {
		return err
	}
	r := res.Value.(*fsm.Restored)
	if !res.Replayed {
		s.logger.Info("restored a backup", "index", r.Index, "forced", r.Forced, "advanced", r.Advanced,
			"backup_cluster", h.Cluster, "backup_node", h.Node, "backup_index", r.BackupIndex, "backup_created", h.Created)
	}
	return c.JSON(http.StatusOK, api.RestoreResult{
		Index: r.Index, BackupIndex: r.BackupIndex,
		Counters: r.Counters, Queues: r.Queues, Documents: r.Documents, Tenants: r.Tenants,
		Forced: r.Forced, Advanced: r.Advanced,
	})
}
