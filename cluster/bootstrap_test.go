package cluster

import (
	"strings"
	"testing"
)

func alive(id string, expect int, hasState bool) member {
	return member{id: id, status: statusAlive, meta: memberMeta{Raft: id + ":1", Expect: expect, HasState: hasState}}
}

func TestPlanBootstrap(t *testing.T) {
	tests := []struct {
		name     string
		members  []member
		servers  int
		existing bool
		refused  bool
		wait     string
	}{
		// Out of order on purpose: the plan itself must sort.
		{"all three fresh", []member{alive("c", 3, false), alive("a", 3, false), alive("b", 3, false)}, 3, false, false, ""},
		{"two of three", []member{alive("a", 3, false), alive("b", 3, false)}, 0, false, false, "saw 2 of 3"},
		{"four seen", []member{alive("a", 3, false), alive("b", 3, false), alive("c", 3, false), alive("d", 3, false)}, 0, false, true, "refusing"},
		{"expect disagrees", []member{alive("a", 3, false), alive("b", 5, false), alive("c", 3, false)}, 0, false, true, "expects 5"},
		{"existing cluster", []member{alive("a", 3, false), alive("b", 3, true), alive("c", 3, false)}, 0, true, false, "already has raft state"},
		{"dead member not counted", []member{alive("a", 3, false), alive("b", 3, false), {id: "c", status: statusDead, meta: memberMeta{Expect: 3}}}, 0, false, false, "saw 2 of 3"},
		{"self missing", []member{alive("b", 2, false), alive("c", 2, false)}, 0, false, false, "not in its own member table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planBootstrap("a", func() int {
				if tt.name == "self missing" {
					return 2
				}
				return 3
			}(), tt.members)
			if len(p.servers) != tt.servers || p.existing != tt.existing || p.refused != tt.refused || !strings.Contains(p.wait, tt.wait) {
				t.Fatalf("plan = %+v", p)
			}
			for i := 1; i < len(p.servers); i++ {
				if p.servers[i-1].ID >= p.servers[i].ID {
					t.Fatalf("servers not sorted: %+v", p.servers)
				}
			}
		})
	}
}
