package harness

// Asking nodes how they see the cluster, over HTTP, the same way for both
// backends: one probe client, GET /v1/cluster, one convergence check and
// one description of what every node said, for failure messages.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/countd/countd/api"
)

// Probe sends each request to exactly one node: no redirects followed, no
// retries, no proxy, no pooled connection to a node that may be gone.
var Probe = &http.Client{
	Timeout:       2 * time.Second,
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// NoRedirects is a client that never follows redirects, so a test sees a
// 307 itself; timeout 0 means none (for watches that last as long as the
// test wants).
func NoRedirects(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Auth is how harness requests present themselves to a secured cluster:
// the management token, and TLS trusting the cluster's CA. A nil *Auth is
// a plain cluster.
type Auth struct {
	Token string
	TLS   *tls.Config

	once      sync.Once
	transport *http.Transport // Probe's transport, over TLS
}

// Scheme is https with TLS, else http.
func (a *Auth) Scheme() string {
	if a != nil && a.TLS != nil {
		return "https"
	}
	return "http"
}

// Do sends req with c (Probe when nil), over TLS and with the token when
// a says so.
func (a *Auth) Do(c *http.Client, req *http.Request) (*http.Response, error) {
	if c == nil {
		c = Probe
	}
	if a == nil {
		return c.Do(req)
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	if a.TLS != nil {
		a.once.Do(func() { a.transport = &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: a.TLS} })
		cc := *c
		cc.Transport = a.transport
		c = &cc
	}
	return c.Do(req)
}

// GetJSON GETs url with Probe and decodes a 200 answer into out; any other
// status is an error quoting the body.
func GetJSON(ctx context.Context, url string, out any) error { return GetJSONAs(ctx, nil, url, out) }

// GetJSONAs is GetJSON presenting auth.
func GetJSONAs(ctx context.Context, auth *Auth, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := auth.Do(Probe, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// Status asks the node at base (http://host:port) for GET /v1/cluster.
func Status(ctx context.Context, base string) (*api.Cluster, error) { return StatusAs(ctx, nil, base) }

// StatusAs is Status presenting auth.
func StatusAs(ctx context.Context, auth *Auth, base string) (*api.Cluster, error) {
	var st api.Cluster
	if err := GetJSONAs(ctx, auth, base+"/v1/cluster", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Voters counts the voters in a node's view of the Raft configuration.
func Voters(st *api.Cluster) int {
	v := 0
	for _, m := range st.Members {
		if m.Suffrage == "voter" {
			v++
		}
	}
	return v
}

// Member finds id among st's members.
func Member(st *api.Cluster, id string) (api.Member, bool) {
	for _, m := range st.Members {
		if m.ID == id {
			return m, true
		}
	}
	return api.Member{}, false
}

// Describe is one node's view in a line: state, leader, term, indexes and
// every member as id/suffrage/status.
func Describe(st *api.Cluster) string {
	if st == nil {
		return "(no status)"
	}
	var ms []string
	for _, m := range st.Members {
		ms = append(ms, fmt.Sprintf("%s/%s/%s", m.ID, m.Suffrage, m.Status))
	}
	return fmt.Sprintf("state=%s leader=%q term=%d commit=%d applied=%d members=[%s]",
		st.State, st.Leader, st.Term, st.CommitIndex, st.AppliedIndex, strings.Join(ms, " "))
}

// Poll is one round of GET /v1/cluster on several nodes: entry i of each
// slice belongs to node i.
type Poll struct {
	IDs      []string
	Statuses []*api.Cluster
	Errs     []error
	// Notes say why a node cannot answer, e.g. that its process exited;
	// nil or "" when there is nothing to say.
	Notes []string
}

// PollStatus asks every node (ids[i] at urls[i]) for its status at once.
func PollStatus(ctx context.Context, ids, urls []string) Poll {
	return PollStatusAs(ctx, nil, ids, urls)
}

// PollStatusAs is PollStatus presenting auth.
func PollStatusAs(ctx context.Context, auth *Auth, ids, urls []string) Poll {
	p := Poll{IDs: ids, Statuses: make([]*api.Cluster, len(urls)), Errs: make([]error, len(urls))}
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { p.Statuses[i], p.Errs[i] = StatusAs(ctx, auth, u) })
	}
	wg.Wait()
	return p
}

// Converged reports whether every node answered, all name the same leader
// and term, exactly that one node says Leader, and every node's Raft
// configuration lists wantVoters voters. It returns the leader's ID.
func (p Poll) Converged(wantVoters int) (leader string, ok bool) {
	var term uint64
	leaders := 0
	for i, st := range p.Statuses {
		if p.Errs[i] != nil || st == nil || st.Leader == "" || Voters(st) != wantVoters {
			return "", false
		}
		if i == 0 {
			leader, term = st.Leader, st.Term
		}
		if st.Leader != leader || st.Term != term {
			return "", false
		}
		if st.State == "Leader" {
			leaders++
			if st.NodeID != leader {
				return "", false
			}
		}
	}
	return leader, leaders == 1
}

// String describes every node's answer on its own line.
func (p Poll) String() string {
	var b strings.Builder
	for i, id := range p.IDs {
		if p.Errs[i] != nil {
			fmt.Fprintf(&b, "\n  %s: error: %v", id, p.Errs[i])
		} else {
			fmt.Fprintf(&b, "\n  %s: %s", id, Describe(p.Statuses[i]))
		}
		if i < len(p.Notes) && p.Notes[i] != "" {
			fmt.Fprintf(&b, " (%s)", p.Notes[i])
		}
	}
	return b.String()
}
