package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestLockRunsTheCommandWithTheLockInItsEnvironment(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	args := []string{"lock", "job", "--ttl", "5s", "--", "sh", "-c", `echo "$COUNTD_LOCK $COUNTD_FENCING_TOKEN $COUNTD_SESSION"; exit 3`}
	r := ctl(t, n.URL, args...)
	if r.code != 3 {
		t.Fatalf("countctl %q: want CMD's exit 3, got %s", args, r)
	}
	f := strings.Fields(r.stdout)
	if len(f) != 3 || f[0] != "job" || f[1] == "0" || f[2] == "" {
		t.Fatalf("CMD saw %q", r.stdout)
	}
	// The place and the session are given up afterwards.
	q := ctl(t, n.URL, "-i", "job", "queue", "list", "-o", "text")
	if strings.Contains(q.stdout, "session-") {
		t.Fatalf("the lock queue still holds the place: %s", q.stdout)
	}
	for _, bad := range [][]string{
		{"lock", "job"},
		{"lock", "job", "--ttl", "500ms", "--", "true"},
		{"lock", "job", "--limit", "0", "--", "true"},
		{"lock", "job", "extra", "--", "true"},
	} {
		wantFailure(t, ctl(t, n.URL, bad...), 2, bad)
	}
}

func TestConcurrentLocksNeverOverlap(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	dir := t.TempDir()
	held := filepath.Join(dir, "held")
	logPath := filepath.Join(dir, "log")
	// Each holder fails loudly if another holds the lock, and logs its
	// fencing token.
	script := fmt.Sprintf(`if [ -e %[1]s ]; then echo OVERLAP; exit 9; fi
touch %[1]s; echo "$COUNTD_FENCING_TOKEN" >> %[2]s; sleep 0.2; rm %[1]s`, held, logPath)
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = ctl(t, n.URL, "lock", "mutex", "--ttl", "5s", "--", "sh", "-c", script)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("holder %d: %s", i, r)
		}
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	tokens := strings.Fields(string(data))
	if len(tokens) != 4 {
		t.Fatalf("%d holders ran, want 4: %q", len(tokens), tokens)
	}
	for i := 1; i < len(tokens); i++ {
		a, _ := strconv.Atoi(tokens[i-1])
		b, _ := strconv.Atoi(tokens[i])
		if b <= a {
			t.Fatalf("fencing tokens did not rise from one holder to the next: %v", tokens)
		}
	}
}
