package cluster

import (
	"maps"
	"slices"
	"testing"
	"time"
)

func TestSortedMembersOrdersByID(t *testing.T) {
	table := map[string]member{}
	for _, id := range []string{"n3", "n10", "a", "n1", "z", "n2"} {
		table[id] = member{id: id}
	}
	var got []string
	for _, m := range sortedMembers(table) {
		got = append(got, m.id)
	}
	want := []string{"a", "n1", "n10", "n2", "n3", "z"}
	if !slices.Equal(got, want) {
		t.Fatalf("sortedMembers = %v, want %v", got, want)
	}
}

func TestSuspectsOf(t *testing.T) {
	const probe = 500 * time.Millisecond
	now := time.Unix(1_000_000, 0)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	// Three members besides self: the limit is (2*3+1) probe intervals.
	limit := 7 * probe
	members := map[string]member{
		"self":    {id: "self", status: statusAlive, since: at(time.Hour)},
		"acked":   {id: "acked", status: statusAlive, since: at(time.Hour)},
		"silent":  {id: "silent", status: statusAlive, since: at(time.Hour)},
		"new":     {id: "new", status: statusAlive, since: at(limit - time.Millisecond)},
		"dead":    {id: "dead", status: statusDead, since: at(time.Hour)},
		"stalest": {id: "stalest", status: statusLeft, since: at(time.Hour)},
	}
	stats := map[string]peerStats{
		"acked":  {at: at(limit - time.Millisecond)},
		"silent": {at: at(limit + time.Millisecond)},
	}
	got := suspectsOf(members, stats, "self", probe, now)
	want := map[string]bool{"silent": true}
	if !maps.Equal(got, want) {
		t.Fatalf("suspects = %v, want %v", got, want)
	}
	// A member that never acked counts from when it became alive.
	delete(stats, "silent")
	members["new"] = member{id: "new", status: statusAlive, since: at(limit + time.Millisecond)}
	got = suspectsOf(members, stats, "self", probe, now)
	want = map[string]bool{"silent": true, "new": true}
	if !maps.Equal(got, want) {
		t.Fatalf("suspects = %v, want %v", got, want)
	}
}
