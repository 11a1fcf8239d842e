package console_test

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"strings"
	"testing"

	"github.com/countd/countd/console"
)

// maxCompressed is the console's budget (SPEC §11: under 300 KB
// compressed, all files together).
const maxCompressed = 300 << 10

// TestConsoleFilesFitTheBudget: every embedded file, gzipped, adds up to
// less than the budget, and the page loads nothing from elsewhere.
func TestConsoleFilesFitTheBudget(t *testing.T) {
	var total int
	err := fs.WalkDir(console.Files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(console.Files(), path)
		if err != nil {
			return err
		}
		// The SVG namespace is a name, not a place anything is loaded from.
		text := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")
		for _, remote := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(text, remote) {
				t.Errorf("%s refers to %q: the console must work offline", path, remote)
			}
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		t.Logf("%s: %d bytes, %d gzipped", path, len(b), buf.Len())
		total += buf.Len()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total >= maxCompressed {
		t.Errorf("the console is %d bytes gzipped, over the %d-byte budget", total, maxCompressed)
	}
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		if _, err := fs.Stat(console.Files(), name); err != nil {
			t.Errorf("%s is not embedded: %v", name, err)
		}
	}
}
