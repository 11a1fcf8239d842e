// Package jepsenlite holds the end-to-end tests of the jepsen-lite harness:
// they build the real countd and jepsen-lite binaries and run short
// campaigns against a real cluster in network namespaces. The harness
// itself lives in the packages below this directory; `make jepsen` runs a
// longer campaign.
package jepsenlite

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/test/jepsen-lite/campaign"
	"github.com/countd/countd/test/jepsen-lite/checker"
	"github.com/countd/countd/test/jepsen-lite/nemesis"
)

// requireRoot skips the test when namespaces cannot be made, unless
// COUNTD_REQUIRE_JEPSEN=1 (set by `make test`) makes that a failure.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "network namespaces need root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "the ip tool (iproute2) is not installed"
	}
	if why == "" {
		return
	}
	if os.Getenv("COUNTD_REQUIRE_JEPSEN") == "1" {
		t.Fatalf("%s, and COUNTD_REQUIRE_JEPSEN=1 forbids skipping", why)
	}
	t.Skip(why)
}

// binaries builds countd (without the race detector: it is the system
// under test, not the test) and jepsen-lite (with it when this test runs
// with it, so the harness's own concurrency is checked too), once.
func binaries(t *testing.T) (countd, jepsen string) {
	t.Helper()
	countd, err := harness.Countd()
	if err == nil {
		jepsen, err = harness.Build("github.com/countd/countd/test/jepsen-lite/cmd/jepsen-lite", raceEnabled)
	}
	if err != nil {
		t.Fatal(err)
	}
	return countd, jepsen
}

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}

// runCampaign runs jepsen-lite with args into a fresh directory and
// returns its exit code and report.
func runCampaign(t *testing.T, args ...string) (int, *campaign.Report, string) {
	t.Helper()
	countd, jepsen := binaries(t)
	// Not t.TempDir: a failed campaign's history and node logs are what
	// the failure is diagnosed from, so they stay (and are named).
	out, err := os.MkdirTemp("", "jepsen-lite-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept the campaign's history and node logs in %s", out)
			return
		}
		_ = os.RemoveAll(out)
	})
	logPath := filepath.Join(out, "jepsen-lite.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(jepsen, append([]string{"-countd", countd, "-out", out}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	t.Logf("running jepsen-lite %s", strings.Join(args, " "))
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run jepsen-lite: %v", err)
	}
	log, _ := os.ReadFile(logPath)
	b, err := os.ReadFile(filepath.Join(out, campaign.ResultFile))
	if err != nil {
		t.Fatalf("jepsen-lite exited %d without a report: %v; its output:\n%s", code, err, log)
	}
	var rep campaign.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	summary, _ := os.ReadFile(filepath.Join(out, campaign.SummaryFile))
	t.Logf("exit %d; summary:\n%s", code, summary)
	if t.Failed() || code == 2 {
		t.Logf("jepsen-lite's output:\n%s", log)
	}
	return code, &rep, out
}

// TestShortCampaign runs every fault kind at least once against a
// 3-node cluster and requires the history to pass every check.
func TestShortCampaign(t *testing.T) {
	requireRoot(t)
	code, rep, out := runCampaign(t, "-duration", "75s", "-seed", "5", "-nodes", "3",
		"-faults", strings.Join(nemesis.Kinds, ","))
	if code != 0 || !rep.Summary.Valid {
		t.Errorf("the campaign's history failed the checker (exit %d); history and node logs in %s", code, out)
	}
	for _, p := range rep.Problems {
		t.Errorf("nemesis problem: %s", p)
	}
	faults := map[string]checker.FaultCount{}
	for _, f := range rep.Summary.Faults {
		faults[f.Kind] = f
	}
	// Every configured fault must really be injected: one skipped as
	// unsupported (a leave route answering 404, say) would silently drop
	// out of the campaign.
	for _, kind := range nemesis.Kinds {
		f := faults[kind]
		if f.Unsupported > 0 {
			t.Errorf("fault %s was skipped as unsupported %d times: %+v", kind, f.Unsupported, rep.Summary.Faults)
		}
		if f.Injected == 0 {
			t.Errorf("fault %s was never injected: %+v", kind, rep.Summary.Faults)
		}
	}
	if len(rep.Summary.LeaderFaults) == 0 {
		t.Error("no fault hit the leader")
	}
	if rep.Summary.Availability < 0.5 {
		t.Errorf("availability %.2f: the cluster was down for most of the campaign", rep.Summary.Availability)
	}
}

// TestStaleReadsAreFlagged runs a campaign whose clients read counters
// with ?consistency=stale from random nodes while partitions cut the
// leader off: reads served by a deposed leader or a lagging follower are
// not linearizable, and the checker must say so, with a visualisation.
func TestStaleReadsAreFlagged(t *testing.T) {
	requireRoot(t)
	code, rep, _ := runCampaign(t, "-duration", "25s", "-seed", "11", "-nodes", "3",
		"-faults", nemesis.Partition, "-stale-reads")
	if code != 1 || rep.Summary.Valid {
		t.Fatalf("stale reads must make the campaign fail the checker (exit 1), got exit %d, valid=%v", code, rep.Summary.Valid)
	}
	flagged := 0
	for _, v := range rep.Summary.Violations {
		if v.Check == checker.CheckLinearizable && strings.Contains(v.Message, "counter") {
			flagged++
			continue
		}
		// Only counter reads were stale: anything else is a false alarm
		// (or a real bug).
		t.Errorf("unexpected violation: %s", v)
	}
	if flagged == 0 {
		t.Errorf("no counter was flagged as not linearizable: %v", rep.Summary.Violations)
	}
	if len(rep.Visualizations) == 0 {
		t.Fatal("no visualisation was written")
	}
	for _, v := range rep.Visualizations {
		if fi, err := os.Stat(v); err != nil || fi.Size() == 0 {
			t.Errorf("visualisation %s: %v", v, err)
		}
	}
	if faults := rep.Summary.Faults; len(faults) != 1 || faults[0].Injected == 0 {
		t.Errorf("want partitions injected, got %+v", faults)
	}
}
