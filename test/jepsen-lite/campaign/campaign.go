// Package campaign runs one jepsen-lite campaign inside the hub namespace
// of a network that already exists: it starts the countd nodes in their
// namespaces, runs the workload and the nemesis side by side for the
// configured time, heals everything, takes the final reads, checks the
// history and writes the report next to it.
package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/test/jepsen-lite/checker"
	"github.com/countd/countd/test/jepsen-lite/history"
	"github.com/countd/countd/test/jepsen-lite/nemesis"
	"github.com/countd/countd/test/jepsen-lite/netns"
	"github.com/countd/countd/test/jepsen-lite/nodes"
	"github.com/countd/countd/test/jepsen-lite/workload"
)

// Files a campaign writes into its output directory.
const (
	HistoryFile = "history.jsonl"
	SummaryFile = "summary.txt"
	ResultFile  = "result.json"
)

// Config describes a campaign.
type Config struct {
	// Countd is the countd binary.
	Countd string
	// Net is the network the nodes run in; the campaign runs in its hub.
	Net      *netns.Network
	Duration time.Duration
	Seed     uint64
	// Faults are the nemesis's fault kinds; none runs the workload alone.
	Faults     []string
	StaleReads bool
	// Insecure runs the nodes without TLS, a gossip key and ACLs; by
	// default the campaign runs the production configuration.
	Insecure bool
	Workers  int
	// OpTimeout bounds each client operation (0: the workload's default).
	OpTimeout time.Duration
	// Out receives the history, the report, node logs and data.
	Out string
	Log *slog.Logger
}

// Report is what result.json holds.
type Report struct {
	Seed     uint64        `json:"seed"`
	Nodes    int           `json:"nodes"`
	Duration time.Duration `json:"duration"`
	Faults   []string      `json:"faults"`
	Stale    bool          `json:"stale_reads"`
	// Secure says the nodes ran with TLS, a gossip key and ACLs.
	Secure bool `json:"secure"`
	// Summary has the tables and the verdict.
	Summary checker.Summary `json:"summary"`
	// Keys are porcupine's verdicts per key.
	Keys []checker.KeyResult `json:"keys"`
	// Visualizations are porcupine's HTML pages of the keys that failed.
	Visualizations []string `json:"visualizations,omitempty"`
	// Problems are faults that could not be injected or healed and
	// recoveries that timed out: not violations by themselves, but the
	// reason to look at the node logs.
	Problems []string `json:"problems"`
}

// Run runs the campaign. It returns an error only when the campaign could
// not be run; a history that fails the checks is a report whose
// Summary.Valid is false.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	var err error
	if err = os.MkdirAll(filepath.Join(cfg.Out, "nodes"), 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	var sec *harness.Secure
	if !cfg.Insecure {
		if sec, err = harness.NewSecure(filepath.Join(cfg.Out, "pki")); err != nil {
			return nil, fmt.Errorf("create the cluster's TLS material: %w", err)
		}
	}
	cl, err := nodes.New(cfg.Countd, cfg.Net, filepath.Join(cfg.Out, "nodes"), sec)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.KillAll() }()
	if err := cl.StartAll(); err != nil {
		return nil, err
	}
	leader, err := cl.WaitConverged(ctx, cl.Nodes, len(cl.Nodes), time.Minute)
	if err != nil {
		return nil, fmt.Errorf("form the cluster: %w", err)
	}
	cfg.Log.Info("cluster formed", "nodes", len(cl.Nodes), "leader", leader.ID)

	f, err := os.Create(filepath.Join(cfg.Out, HistoryFile))
	if err != nil {
		return nil, fmt.Errorf("create history: %w", err)
	}
	defer f.Close()
	hist := history.NewWriter(f)
	wcfg := workload.Config{Addrs: cl.URLs(), Workers: cfg.Workers, Seed: cfg.Seed, StaleReads: cfg.StaleReads, OpTimeout: cfg.OpTimeout}
	if sec != nil {
		wcfg.Token, wcfg.TLS = sec.Token, sec.ClientTLS()
	}
	wl := workload.New(wcfg, hist)
	nem := nemesis.New(nemesis.Config{Kinds: cfg.Faults, Seed: cfg.Seed}, cl, cfg.Net, hist, cfg.Log)

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nem.Run(runCtx)
	}()
	wlErr := wl.Run(runCtx)
	wg.Wait()
	cfg.Log.Info("workload done; healing every fault")

	// The campaign's own end (or a ^C) must not stop the heal and the
	// final reads: they are what the checker needs most.
	end := context.WithoutCancel(ctx)
	problems := nem.Problems
	if err := nem.HealAll(end); err != nil {
		problems = append(problems, fmt.Sprintf("final heal: %v", err))
	}
	if err := wl.FinalReads(end); err != nil {
		problems = append(problems, err.Error())
	}
	if err := errors.Join(wlErr, hist.Err(), f.Close()); err != nil {
		return nil, fmt.Errorf("record the history: %w", err)
	}

	h, err := history.ReadFile(filepath.Join(cfg.Out, HistoryFile))
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("checking the history", "ops", len(h.Ops), "faults", len(h.Faults))
	res := checker.Check(h, checker.Options{Dir: cfg.Out})
	rep := &Report{
		Seed: cfg.Seed, Nodes: len(cl.Nodes), Duration: cfg.Duration, Faults: cfg.Faults, Stale: cfg.StaleReads, Secure: sec != nil,
		Summary: checker.Summarize(h, res), Keys: res.Keys, Visualizations: res.Visualizations, Problems: problems,
	}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	return rep, rep.write(cfg.Out)
}

// WriteSummary prints the report's header and tables.
func (r *Report) WriteSummary(w *strings.Builder) {
	fmt.Fprintf(w, "jepsen-lite: seed %d, %d nodes, %v, faults %s, stale reads %v, secure %v\n\n",
		r.Seed, r.Nodes, r.Duration, strings.Join(r.Faults, ","), r.Stale, r.Secure)
	_ = r.Summary.WriteTable(w) // a strings.Builder does not fail
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func (r *Report) write(dir string) error {
	var s strings.Builder
	r.WriteSummary(&s)
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), []byte(s.String()), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResultFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
