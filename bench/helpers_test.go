package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(lat, tc.p); got != tc.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile(lat[:1], 0.99); got != time.Millisecond {
		t.Errorf("percentile of one = %v", got)
	}
}

func TestCheckMints(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mints []mint
		count int64
		err   string
	}{
		{"ok singles out of order", []mint{{3, 1}, {1, 1}, {2, 1}}, 1, ""},
		{"ok ranges", []mint{{1001, 1000}, {1, 1000}, {2001, 1000}}, 1000, ""},
		{"duplicate single", []mint{{1, 1}, {2, 1}, {2, 1}}, 1, "1 duplicated"},
		{"overlapping ranges", []mint{{1, 10}, {5, 10}}, 10, "1 duplicated"},
		{"gap", []mint{{1, 1}, {3, 1}}, 1, "1 gaps"},
		{"not from 1", []mint{{2, 1}}, 1, "1 gaps"},
		{"empty", nil, 1, ""},
	} {
		err := checkMints(tc.mints, tc.count, true)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
	// After failed requests gaps are expected, duplicates never.
	if err := checkMints([]mint{{1, 1}, {5, 1}}, 1, false); err != nil {
		t.Errorf("gap with complete=false: %v", err)
	}
	if err := checkMints([]mint{{5, 1}, {5, 1}}, 1, false); err == nil {
		t.Error("duplicate with complete=false: no error")
	}
}

func TestZKSequence(t *testing.T) {
	if n, err := zkSequence("/bench-x/id-0000000042", "/bench-x/id-"); err != nil || n != 42 {
		t.Errorf("zkSequence = %d, %v; want 42", n, err)
	}
	for _, bad := range []string{"/bench-y/id-0000000042", "/bench-x/id-42", "/bench-x/id-00000000x2", "/bench-x/id-"} {
		if n, err := zkSequence(bad, "/bench-x/id-"); err == nil {
			t.Errorf("zkSequence(%q) = %d, want an error", bad, n)
		}
	}
}
