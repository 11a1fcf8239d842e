package api

// ContentTypeBackup is the media type of a backup file: the body of
// GET /v1/snapshot and of POST /v1/snapshot. Clients treat it as opaque
// bytes; the server checks its framing and checksum on restore.
const ContentTypeBackup = "application/octet-stream"

// RestoreResult is the answer to POST /v1/snapshot.
type RestoreResult struct {
	// Index is the log index of the restore.
	Index uint64 `json:"index"`
	// BackupIndex is the applied index the backup was taken at, in the
	// cluster it came from.
	BackupIndex uint64 `json:"backup_index"`
	// Counters, Queues, Documents and Tenants count the objects the backup
	// held (documents include deleted ones, kept for their versions).
	Counters  int64 `json:"counters"`
	Queues    int64 `json:"queues"`
	Documents int64 `json:"documents"`
	Tenants   int64 `json:"tenants"`
	// Forced is true when the backup was restored verbatim (?force=true).
	Forced bool `json:"forced"`
	// Advanced is what was added to every counter and queue high-water mark.
	Advanced uint64 `json:"advanced"`
}
