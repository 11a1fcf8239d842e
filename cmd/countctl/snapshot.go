package main

// Snapshot commands: save a backup of the whole cluster state to a file,
// and restore one. countctl only moves the bytes; the server checks them.

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

func (a *app) snapshotCommand() *cobra.Command {
	return group("snapshot", "Back up the whole cluster state and restore it", a.snapshotSave(), a.snapshotRestore())
}

func (a *app) snapshotSave() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a backup of the whole cluster state to FILE (- for stdout)",
		Long: `Save a backup of the whole cluster state to FILE: every counter, queue,
document, tenant's items and remembered idempotency key, as of one point in
the log. The backup is taken on the leader and holds every write
acknowledged before the command started (--stale takes the own, possibly
stale copy of the first node that answers instead).

FILE is written atomically with mode 0600: the backup goes to a temporary
file beside it, which is synced and renamed to FILE only when complete, so
FILE is never a partial backup. With - the backup goes to stdout and
nothing else is printed there. --timeout bounds the whole download; raise
it for a large state.`,
		Args: cobra.ExactArgs(1),
	}
	return withStale(cmd, "back up the first answering node's own copy, possibly stale, instead of the leader's", func(args []string, opts []client.CallOption) error {
		path := args[0]
		if path == "" {
			return usagef("FILE must not be empty (use - for stdout)")
		}
		return a.call(func(ctx context.Context, cl *client.Client) error {
			if path == "-" {
				_, err := cl.Backup(ctx, a.stdout, opts...)
				return err
			}
			var index uint64
			err := writeFileAtomic(path, 0o600, func(w io.Writer) (err error) {
				index, err = cl.Backup(ctx, w, opts...)
				return err
			})
			if err != nil {
				return fmt.Errorf("save backup to %s: %w", path, err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("saved backup to %s, but: %w", path, err)
			}
			size := fi.Size()
			return a.printLine(struct {
				File    string `json:"file"`
				Index   uint64 `json:"index"`
				Bytes   int64  `json:"bytes"`
				Cluster string `json:"cluster"`
			}{path, index, size, cl.ClusterName()}, fmt.Sprintf("saved %s: index %d, %d bytes", path, index, size))
		})
	})
}

func (a *app) snapshotRestore() *cobra.Command {
	var (
		force   bool
		advance uint64
	)
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup from FILE (- for stdin) on the running cluster",
		Long: `Restore a backup that "snapshot save" wrote (FILE, or - for stdin) on the
running cluster. Every node applies it at the same point in the log.

Nothing moves backwards: each counter keeps the larger of its current and
its backed-up value, queue high-water marks, fencing tokens and document
versions continue from the larger of the two, and counters, queues and
documents missing from the backup are kept. Everything else (queue
members and config, document values, tenants' items) comes from the
backup. --force restores the backup verbatim instead, letting IDs be minted
again.

Restoring into a new, empty cluster cannot know what the old one handed
out after the backup was taken: --advance N adds N to every counter and
queue high-water mark, so the next IDs are above anything the old cluster
could have minted since, if N is larger than the number it minted after
the backup. A truncated or corrupt file is refused and changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := args[0]
			if path == "" {
				return usagef("FILE must not be empty (use - for stdin)")
			}
			var (
				file []byte
				err  error
			)
			if path == "-" {
				file, err = io.ReadAll(a.stdin)
			} else {
				file, err = os.ReadFile(path)
			}
			if err != nil {
				return fmt.Errorf("read backup: %w", err)
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.RestoreResult, error) {
				return cl.Restore(ctx, file, client.RestoreOptions{Force: force, Advance: advance})
			}, func(cl *client.Client, r *api.RestoreResult) error {
				mode := "merged"
				if r.Forced {
					mode = "forced"
				}
				return a.printLine(struct {
					*api.RestoreResult
					Cluster string `json:"cluster"`
				}{r, cl.ClusterName()}, fmt.Sprintf("restored at index %d (%s, advanced by %d): %d counters, %d queues, %d documents, %d tenants",
					r.Index, mode, r.Advanced, r.Counters, r.Queues, r.Documents, r.Tenants))
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "restore the backup verbatim: values may move backwards and objects missing from it are dropped")
	cmd.Flags().Uint64Var(&advance, "advance", 0, "add `N` to every counter and queue high-water mark after the restore")
	return cmd
}
