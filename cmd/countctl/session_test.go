package main

import (
	"strings"
	"testing"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestSessionCommands(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	create := []string{"session", "create", "--ttl", "30s", "--name", "worker", "-o", "text"}
	r := ctl(t, n.URL, create...)
	wantSuccess(t, r, create)
	id := strings.TrimSpace(r.stdout)
	for _, args := range [][]string{{"session", "renew", id}, {"session", "get", id}} {
		r := ctl(t, n.URL, args...)
		wantSuccess(t, r, args)
		if !strings.Contains(r.stdout, `"name": "worker"`) {
			t.Errorf("countctl %q: %s", args, r.stdout)
		}
	}
	list := []string{"session", "list", "-o", "text"}
	if r := ctl(t, n.URL, list...); r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "30s") {
		t.Errorf("countctl %q: %s", list, r)
	}
	rm := []string{"session", "rm", id}
	wantSuccess(t, ctl(t, n.URL, rm...), rm)
	renew := []string{"session", "renew", id}
	wantFailure(t, ctl(t, n.URL, renew...), 1, renew)
	for _, bad := range [][]string{{"session", "create"}, {"session", "create", "--ttl", "500ms"}, {"session", "renew"}} {
		wantFailure(t, ctl(t, n.URL, bad...), 2, bad)
	}
}
