package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/test/jepsen-lite/history"
)

// Only an answer from countd refusing the request proves an operation did
// not happen; everything else must be recorded as unknown, never failed.
func TestOutcome(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want history.Outcome
	}{
		"conflict":      {&client.Error{Status: http.StatusConflict, Code: api.CodeConflict}, history.Failed},
		"precondition":  {&client.Error{Status: http.StatusPreconditionFailed, Code: api.CodePreconditionFailed}, history.Failed},
		"not queued":    {fmt.Errorf("leave: %w", &client.Error{Status: http.StatusNotFound, Code: api.CodeNotFound}), history.Failed},
		"deadline":      {fmt.Errorf("gave up after %w: n1: no_leader", context.DeadlineExceeded), history.Unknown},
		"internal":      {&client.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal}, history.Unknown},
		"no leader 503": {&client.Error{Status: http.StatusServiceUnavailable, Code: api.CodeNoLeader}, history.Unknown},
		"connection":    {errors.New("dial tcp 10.77.1.1:8080: connection refused"), history.Unknown},
	} {
		if got, _ := outcome(tc.err); got != tc.want {
			t.Errorf("%s: outcome(%v) = %s, want %s", name, tc.err, got, tc.want)
		}
	}
}
