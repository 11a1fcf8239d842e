package checker

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// Summary is what a campaign did and what the checker made of it.
type Summary struct {
	// Ops counts the clients' operations (final reads excluded) by
	// function and outcome.
	Ops []OpCount `json:"ops"`
	// Faults counts the faults by kind.
	Faults []FaultCount `json:"faults"`
	// Availability is the fraction of the clients' operations that
	// succeeded.
	Availability float64 `json:"availability"`
	// Answered is the fraction that got a definite answer: success or a
	// refusal such as a CAS conflict (which is the service working).
	Answered float64 `json:"answered"`
	// LeaderFaults are the faults that hit the leader, each with the
	// longest time without a successful operation from its start to the
	// next fault.
	LeaderFaults []LeaderFault `json:"leader_faults"`
	// Valid is the checker's verdict.
	Valid      bool        `json:"valid"`
	Violations []Violation `json:"violations"`
}

// OpCount is one row of the operations table.
type OpCount struct {
	F history.F `json:"f"`
	// OK, Failed and Unknown count the operations of each outcome.
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"`
}

// FaultCount is one row of the faults table.
type FaultCount struct {
	Kind string `json:"kind"`
	// Injected counts the faults done; OnLeader those of them that hit
	// the leader; Unsupported the ones skipped because countd lacks them.
	Injected    int `json:"injected"`
	OnLeader    int `json:"on_leader"`
	Unsupported int `json:"unsupported"`
}

// LeaderFault is one fault on the leader and how long service stopped.
type LeaderFault struct {
	Kind  string   `json:"kind"`
	Nodes []string `json:"nodes"`
	// At is when it started, Lasted how long until it was healed.
	At     time.Duration `json:"at"`
	Lasted time.Duration `json:"lasted"`
	// Unavailable is the longest stretch from the fault's start to the
	// next fault's (or the history's end) in which no operation succeeded.
	Unavailable time.Duration `json:"unavailable"`
}

// Summarize tabulates h and the checker's result on it.
func Summarize(h *history.History, res *Result) Summary {
	s := Summary{Valid: res.Valid, Violations: res.Violations}
	rows := map[history.F]*OpCount{}
	var total, ok, failed int
	var okTimes []int64
	for _, op := range h.Ops {
		if op.In.Final {
			continue
		}
		r := rows[op.F]
		if r == nil {
			r = &OpCount{F: op.F}
			rows[op.F] = r
		}
		total++
		switch op.Outcome {
		case history.OK:
			r.OK++
			ok++
			if !op.In.Stale {
				okTimes = append(okTimes, op.Complete)
			}
		case history.Failed:
			r.Failed++
			failed++
		default:
			r.Unknown++
		}
	}
	for _, r := range rows {
		s.Ops = append(s.Ops, *r)
	}
	sort.Slice(s.Ops, func(i, j int) bool { return s.Ops[i].F < s.Ops[j].F })
	if total > 0 {
		s.Availability = float64(ok) / float64(total)
		s.Answered = float64(ok+failed) / float64(total)
	}
	sort.Slice(okTimes, func(i, j int) bool { return okTimes[i] < okTimes[j] })

	kinds := map[string]*FaultCount{}
	for i, f := range h.Faults {
		k := kinds[f.Kind]
		if k == nil {
			k = &FaultCount{Kind: f.Kind}
			kinds[f.Kind] = k
		}
		if f.Unsupported {
			k.Unsupported++
			continue
		}
		k.Injected++
		if !f.Leader {
			continue
		}
		k.OnLeader++
		until := h.End
		if i+1 < len(h.Faults) {
			until = h.Faults[i+1].Start
		}
		s.LeaderFaults = append(s.LeaderFaults, LeaderFault{
			Kind: f.Kind, Nodes: f.Nodes, At: time.Duration(f.Start), Lasted: time.Duration(f.End - f.Start),
			Unavailable: time.Duration(longestGap(okTimes, f.Start, until)),
		})
	}
	for _, k := range kinds {
		s.Faults = append(s.Faults, *k)
	}
	sort.Slice(s.Faults, func(i, j int) bool { return s.Faults[i].Kind < s.Faults[j].Kind })
	return s
}

// longestGap is the longest stretch within [from, to] containing no time
// of the sorted times.
func longestGap(times []int64, from, to int64) int64 {
	i := sort.Search(len(times), func(i int) bool { return times[i] >= from })
	prev, gap := from, int64(0)
	for ; i < len(times) && times[i] <= to; i++ {
		gap = max(gap, times[i]-prev)
		prev = times[i]
	}
	return max(gap, to-prev)
}

// WriteTable prints the summary as aligned tables.
func (s Summary) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tok\tfailed\tunknown\t")
	var ok, failed, unknown int
	for _, r := range s.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", r.F, r.OK, r.Failed, r.Unknown)
		ok, failed, unknown = ok+r.OK, failed+r.Failed, unknown+r.Unknown
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t\n", ok, failed, unknown)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "fault\tinjected\ton leader\tunsupported\t")
	for _, f := range s.Faults {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", f.Kind, f.Injected, f.OnLeader, f.Unsupported)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "leader fault\tnodes\tat\tlasted\tlongest unavailable\t")
	for _, f := range s.LeaderFaults {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%v\t\n", f.Kind, strings.Join(f.Nodes, ","),
			f.At.Round(time.Millisecond), f.Lasted.Round(time.Millisecond), f.Unavailable.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	verdict := "VALID"
	if !s.Valid {
		verdict = fmt.Sprintf("INVALID (%d violations)", len(s.Violations))
	}
	fmt.Fprintf(w, "\navailability: %.1f%% of operations succeeded, %.1f%% got a definite answer (refusals included)\nverdict: %s\n",
		100*s.Availability, 100*s.Answered, verdict)
	for _, v := range s.Violations {
		fmt.Fprintf(w, "  %s\n", v)
	}
	return nil
}
