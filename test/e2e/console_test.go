package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/countd/countd/internal/harness"
)

// chromiumPath is Debian's chromium, which `make deps` installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium at 1280×800 and returns a tab's
// context. COUNTD_REQUIRE_BROWSER=1 (make test) turns a missing Chromium
// from a skip into a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("COUNTD_REQUIRE_BROWSER") != "" {
			t.Fatalf("%s is required (apt-get install chromium; make deps does): %v", chromiumPath, err)
		}
		t.Skipf("no %s (apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return ctx
}

// see waits until the page's expression is true.
func see(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for the page to show %s (%s): %v\npage text:\n%s", what, expr, err, text)
	}
}

func browse(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// screenshot writes the page to name.png under COUNTD_SCREENSHOTS (or the
// test's temporary directory) and returns the path.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	dir := os.Getenv("COUNTD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustCtl runs countctl against the cluster and returns its stdout,
// failing the test unless it exits 0.
func mustCtl(t *testing.T, c *harness.ProcessCluster, args ...string) string {
	t.Helper()
	out, stderr, code := ctl(t, append([]string{"-a", urls(c), "--timeout", "20s"}, args...)...)
	if code != 0 {
		t.Fatalf("countctl %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// TestConsole drives the web console in headless Chromium against a real
// 3-node cluster, from a follower's page: every view shows what countctl
// made, changes made elsewhere appear without a reload, user data is shown
// as text and never run, a stale edit shows its conflict, and the page
// shows the new leader after the leader is killed.
func TestConsole(t *testing.T) {
	c := newCluster(t, 3, true)
	for _, p := range c.Nodes {
		p.MustStart(t)
	}
	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	page := c.Others(leader)[0]
	ui := page.URL() + "/ui/"
	ctx := browser(t)

	mustCtl(t, c, "-i", "orders", "counter", "next", "--count", "3")
	mustCtl(t, c, "-i", "fast", "counter", "set", "--cache", "100")
	const evil = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`
	mustCtl(t, c, "-i", "zk", "queue", "-p", "host-a", "join", "--tag", "note="+evil)
	mustCtl(t, c, "doc", "put", "settings", "--value", `{"mode":"a","limit":10,"html":"`+strings.ReplaceAll(evil, `"`, `\"`)+`"}`)
	sess := strings.TrimSpace(mustCtl(t, c, "-o", "text", "session", "create", "--ttl", "1m", "--name", "console-test"))

	// Cluster: members, roles, the leader.
	browse(t, ctx, ui)
	see(t, ctx, "three members and the leader", `document.querySelectorAll("[data-member]").length === 3 &&
		document.querySelector("[data-member='`+leader.ID+`'] .badge.leader") !== null`)
	see(t, ctx, "the node it runs on", `document.getElementById("whereami").textContent.includes("node `+page.ID+` (follower)")`)
	see(t, ctx, "the mint rate", `document.body.innerText.includes("IDs/s now")`)
	clusterShot := screenshot(t, ctx, "console-cluster")

	// Counters: the values countctl made, a mint made elsewhere shows up
	// without a reload, and a mint from the page.
	browse(t, ctx, ui+"#/counters")
	see(t, ctx, "orders at 3", `document.querySelector("[data-counter=orders] .value")?.textContent === "3"`)
	see(t, ctx, "fast as cached", `document.querySelector("[data-counter=fast]")?.textContent.includes("cached 100")`)
	mustCtl(t, c, "-i", "orders", "counter", "next")
	see(t, ctx, "orders at 4 after countctl minted", `document.querySelector("[data-counter=orders] .value")?.textContent === "4"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-counter=orders] button`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "the page's own mint", `document.querySelector(".msg.ok")?.textContent === "minted 5 from orders"`)
	countersShot := screenshot(t, ctx, "console-counters")

	// The keyboard reaches the views: Tab from the brand lands on the
	// first view link, and Enter opens it.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(".brand")), chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "focus on the Cluster link", `document.activeElement?.textContent === "Cluster"`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "the cluster view, opened from the keyboard", `location.hash === "#/cluster" && document.querySelectorAll("[data-member]").length === 3`)

	// A phone-sized window: the page reflows, nothing spills sideways.
	browse(t, ctx, ui+"#/counters")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "the counters, without sideways scrolling", `document.querySelector("[data-counter=orders]") !== null &&
		document.documentElement.scrollWidth <= window.innerWidth`)
	screenshot(t, ctx, "console-phone")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}

	// Queues: members with tags as text, a join elsewhere appears.
	browse(t, ctx, ui+"#/queues/zk")
	see(t, ctx, "host-a at position 0", `document.querySelector("[data-process=host-a]")?.textContent.startsWith("01host-a")`)
	mustCtl(t, c, "-i", "zk", "queue", "-p", "host-b", "join")
	see(t, ctx, "host-b after countctl joined", `document.querySelector("[data-process=host-b]")?.textContent.startsWith("12host-b")`)
	see(t, ctx, "the tag as text", `document.querySelector("[data-process=host-a]").textContent.includes('<img src=x onerror="window.__pwned=1">')`)
	screenshot(t, ctx, "console-queue")
	// Join and leave from the page.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#join-pid"), "host-c"), chromedp.SendKeys(chromedp.CSS("#join-tags"), "dc=west"),
		chromedp.Click(chromedp.Search(`//button[text()="Join"]`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "host-c joined from the page", `document.querySelector("[data-process=host-c]")?.textContent.startsWith("23host-cdc=west")`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-process=host-a] button`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "host-a gone and host-b first", `document.querySelector("[data-process=host-a]") === null &&
		document.querySelector("[data-process=host-b]")?.textContent.startsWith("02host-b")`)

	// Documents: the JSON, and a change made elsewhere marked in the stream.
	browse(t, ctx, ui+"#/docs/settings")
	see(t, ctx, "the document", `document.getElementById("doc-value").textContent.includes('"limit": 10')`)
	mustCtl(t, c, "doc", "patch", "settings", "--value", `{"limit":20,"mode":null,"owner":"ops"}`)
	see(t, ctx, "the change marked", `document.querySelector("#doc-changes li.modified")?.textContent.includes("limit") &&
		document.querySelector("#doc-changes li.removed")?.textContent.includes("mode") &&
		document.querySelector("#doc-changes li.added")?.textContent.includes("owner")`)
	see(t, ctx, "the new value", `document.getElementById("doc-value").textContent.includes('"limit": 20')`)
	screenshot(t, ctx, "console-document")

	// A stale edit: the edit starts from the current version, another
	// write lands, and the save is refused with the conflict shown.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.Search(`//button[text()="Edit current"]`))); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, "doc", "patch", "settings", "--value", `{"limit":30}`)
	see(t, ctx, "the other write", `document.getElementById("doc-value").textContent.includes('"limit": 30')`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#doc-save`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "the conflict", `document.querySelector(".msg.error")?.textContent.startsWith("Conflict: the document changed")`)

	// Nothing the user data held ever ran.
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__pwned === undefined && document.querySelectorAll("main img, main script").length === 0`)); err != nil || !v {
		t.Errorf("user data ran as HTML: %v, %v", v, err)
	}

	// Sessions.
	browse(t, ctx, ui+"#/sessions")
	see(t, ctx, "the session", `document.querySelector("[data-session='`+sess+`']")?.textContent.includes("console-test")`)
	screenshot(t, ctx, "console-sessions")

	// Transfer leadership from the page, then kill the leader: the page,
	// on a follower, shows the new one each time.
	browse(t, ctx, ui+"#/cluster")
	see(t, ctx, "the old leader", `document.querySelector("[data-member='`+leader.ID+`'] .badge.leader") !== null`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.Search(`//button[text()="Transfer leadership"]`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "the transfer's answer", `document.querySelector(".msg.ok")?.textContent.startsWith("leader is now ")`)
	leader = c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	see(t, ctx, "the transferred leader", `document.querySelector("[data-member='`+leader.ID+`'] .badge.leader") !== null`)
	if leader == page {
		// The leader to kill must not be the node serving the page.
		mustCtl(t, c, "cluster", "transfer", c.Others(page)[0].ID)
		leader = c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
		see(t, ctx, "the leader away from the page", `document.querySelector("[data-member='`+leader.ID+`'] .badge.leader") !== null`)
	}
	leader.MustKill(t)
	next := c.MustWaitConverged(t, c.Others(leader), 3, 30*time.Second)
	see(t, ctx, "the new leader", `document.querySelector("[data-member='`+next.ID+`'] .badge.leader") !== null &&
		document.querySelector("[data-member='`+leader.ID+`']")?.className === "down"`)
	t.Logf("console screenshots: %s, %s (and the other views beside them); after killing %s the page on %s showed %s as leader",
		clusterShot, countersShot, leader.ID, page.ID, next.ID)
}

// TestConsoleACL: with ACLs on, the console asks for a token before it
// shows anything, and with a read-only token it shows the counters but
// its mint is refused with the server's sentence, plainly.
func TestConsoleACL(t *testing.T) {
	dir := t.TempDir()
	const mgmt = "console-management-token-0123456789"
	tokenFile := filepath.Join(dir, "mgmt.token")
	if err := os.WriteFile(tokenFile, []byte(mgmt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 3, true, "-acl", "-acl-initial-management-token-file", tokenFile)
	for _, p := range c.Nodes {
		p.Auth = &harness.Auth{Token: mgmt}
		p.MustStart(t)
	}
	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	mustCtl(t, c, "--token", mgmt, "-i", "orders", "counter", "next")
	out := mustCtl(t, c, "--token", mgmt, "-o", "json", "acl", "token", "create", "--description", "console reader",
		"--rule", "counters::read", "--rule", "cluster::read")
	var tok struct{ Secret string }
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Secret == "" {
		t.Fatalf("token create: %s (%v)", out, err)
	}
	secret := tok.Secret

	ctx := browser(t)
	browse(t, ctx, leader.URL()+"/ui/#/counters")
	see(t, ctx, "the token form", `!document.getElementById("token-form").hidden &&
		document.getElementById("token-why").textContent.startsWith("ACLs are on")`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token-input"), secret), chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "orders with the read token", `document.querySelector("[data-counter=orders] .value")?.textContent === "1"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-counter=orders] button`))); err != nil {
		t.Fatal(err)
	}
	see(t, ctx, "the refusal", `document.querySelector(".msg.error")?.textContent === 'Forbidden: this token lacks counters:write on "orders"'`)
	screenshot(t, ctx, "console-forbidden")
	if v := mustCtl(t, c, "--token", mgmt, "-i", "orders", "-o", "text", "counter", "get"); strings.TrimSpace(v) != "1" {
		t.Errorf("orders after the refused mint: %s, want 1", v)
	}
	// The token is kept for the tab only: a new tab asks again.
	if stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("countd-token")`)); err != nil || stored != secret {
		t.Errorf("session storage holds %q, %v", stored, err)
	}
	if local, err := chromedp.Run(ctx, chromedp.Evaluate[int](`localStorage.length`)); err != nil || local != 0 {
		t.Errorf("local storage has %d items, %v; the token must not outlive the tab", local, err)
	}
}
