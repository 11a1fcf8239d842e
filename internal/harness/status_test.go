package harness

import (
	"errors"
	"strings"
	"testing"

	"github.com/countd/countd/api"
)

// view is a node's status with the given members, all voters.
func view(id, state, leader string, term uint64, members ...string) *api.Cluster {
	st := &api.Cluster{NodeID: id, State: state, Leader: leader, Term: term}
	for _, m := range members {
		st.Members = append(st.Members, api.Member{ID: m, Suffrage: "voter", Status: "alive"})
	}
	return st
}

func TestPollConverged(t *testing.T) {
	three := []string{"n1", "n2", "n3"}
	agreed := func() []*api.Cluster {
		return []*api.Cluster{
			view("n1", "Leader", "n1", 4, three...),
			view("n2", "Follower", "n1", 4, three...),
			view("n3", "Follower", "n1", 4, three...),
		}
	}
	for _, tc := range []struct {
		name   string
		change func(sts []*api.Cluster, errs []error)
		voters int
		leader string
	}{
		{"agreed", func([]*api.Cluster, []error) {}, 3, "n1"},
		{"wrong voter count", func([]*api.Cluster, []error) {}, 2, ""},
		{"a node does not answer", func(_ []*api.Cluster, errs []error) { errs[2] = errors.New("refused") }, 3, ""},
		{"a node knows no leader", func(sts []*api.Cluster, _ []error) { sts[1].Leader = "" }, 3, ""},
		{"another leader named", func(sts []*api.Cluster, _ []error) { sts[2].Leader = "n2" }, 3, ""},
		{"another term", func(sts []*api.Cluster, _ []error) { sts[1].Term = 5 }, 3, ""},
		{"nobody says Leader", func(sts []*api.Cluster, _ []error) { sts[0].State = "Follower" }, 3, ""},
		{"the one that says Leader is not the one named", func(sts []*api.Cluster, _ []error) {
			for _, st := range sts {
				st.Leader = "n2"
			}
		}, 3, ""},
		{"two say Leader", func(sts []*api.Cluster, _ []error) { sts[1].State = "Leader" }, 3, ""},
		{"a node lacks a voter", func(sts []*api.Cluster, _ []error) { sts[2].Members[1].Suffrage = "nonvoter" }, 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Poll{IDs: three, Statuses: agreed(), Errs: make([]error, 3)}
			tc.change(p.Statuses, p.Errs)
			leader, ok := p.Converged(tc.voters)
			if ok != (tc.leader != "") || (ok && leader != tc.leader) {
				t.Fatalf("Converged(%d) = %q, %v; want %q:%s", tc.voters, leader, ok, tc.leader, p)
			}
		})
	}
}

func TestPollString(t *testing.T) {
	p := Poll{
		IDs:      []string{"n1", "n2"},
		Statuses: []*api.Cluster{view("n1", "Leader", "n1", 2, "n1", "n2"), nil},
		Errs:     []error{nil, errors.New("connection refused")},
		Notes:    []string{"", "process exited: signal: killed"},
	}
	got := p.String()
	for _, want := range []string{
		`n1: state=Leader leader="n1" term=2`, "members=[n1/voter/alive n2/voter/alive]",
		"n2: error: connection refused (process exited: signal: killed)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:%s", want, got)
		}
	}
}

func TestFreePortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := MustFreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		if !portFree(p) {
			t.Fatalf("port %d is not free for TCP and UDP", p)
		}
		seen[p] = true
	}
}
