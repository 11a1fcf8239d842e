package e2e

// The files under deploy/: the systemd unit verifies, and every variable
// of its environment file is a countd flag.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("../../deploy/countd.service")
	if err != nil {
		t.Fatal(err)
	}
	env, err := filepath.Abs("../../deploy/countd.env")
	if err != nil {
		t.Fatal(err)
	}
	// The unit as installed, with this build's binary and the example
	// environment file in place of /usr/local/bin and /etc.
	text := strings.NewReplacer("/usr/local/bin/countd", countdBin, "/etc/countd/countd.env", env).Replace(string(unit))
	path := filepath.Join(t.TempDir(), "countd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=countd", "User=countd", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(text, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

func TestEnvironmentFileNamesRealFlags(t *testing.T) {
	help, _ := exec.Command(countdBin, "-h").CombinedOutput()
	f, err := os.Open("../../deploy/countd.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "#"))
		name, _, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "COUNTD_") || strings.Contains(name, " ") {
			continue
		}
		n++
		flag := "-" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "COUNTD_"), "_", "-"))
		if !strings.Contains(string(help), "  "+flag+" ") && !strings.Contains(string(help), "  "+flag+"\n") {
			t.Errorf("%s: countd has no flag %s", name, flag)
		}
	}
	if n < 10 {
		t.Fatalf("only %d COUNTD_ variables found", n)
	}
}
