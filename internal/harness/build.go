package harness

// Building the binaries the process backend runs, once per process.

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// Main packages the process backend builds.
const (
	CountdPkg   = "github.com/countd/countd/cmd/countd"
	CountctlPkg = "github.com/countd/countd/cmd/countctl"
)

type buildKey struct {
	pkg  string
	race bool
}

type buildResult struct {
	path string
	err  error
}

var builds struct {
	mu   sync.Mutex
	dir  string
	done map[buildKey]buildResult
}

// Build builds the main package pkg, the first time it is asked for in this
// process, into a temporary directory (RemoveBuilds deletes it) and returns
// the binary's path. The race detector is on only when race is true,
// whatever GOFLAGS says: the countd under test is built without it (it is
// the system under test, and the race detector would slow it down many
// times over), while the tests themselves may run with it.
func Build(pkg string, race bool) (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	key := buildKey{pkg, race}
	if r, ok := builds.done[key]; ok {
		return r.path, r.err
	}
	r := build(pkg, race)
	if builds.done == nil {
		builds.done = map[buildKey]buildResult{}
	}
	builds.done[key] = r
	return r.path, r.err
}

func build(pkg string, race bool) buildResult {
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "countd-harness-bin-")
		if err != nil {
			return buildResult{err: err}
		}
		builds.dir = dir
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return buildResult{err: fmt.Errorf("the go tool is not on PATH: %w", err)}
	}
	name := path.Base(pkg)
	if race {
		name += "-race"
	}
	out := filepath.Join(builds.dir, name)
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, pkg)...)
	cmd.Env = buildEnv()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return buildResult{err: fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)}
	}
	return buildResult{path: out}
}

// Countd builds countd (without the race detector) once.
func Countd() (string, error) { return Build(CountdPkg, false) }

// Countctl builds countctl (without the race detector) once.
func Countctl() (string, error) { return Build(CountctlPkg, false) }

// RemoveBuilds deletes the binaries Build made; call it at the end of
// TestMain.
func RemoveBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	builds.dir, builds.done = "", nil
}

// buildEnv is the environment for go build, without a -race that GOFLAGS
// may carry.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var keep []string
			for _, f := range strings.Fields(v) {
				if f != "-race" && f != "--race" && f != "-race=true" {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		env = append(env, kv)
	}
	return env
}
