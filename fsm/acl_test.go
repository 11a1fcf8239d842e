package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestACLTokenAllows(t *testing.T) {
	tok := &ACLToken{Rules: []ACLRule{
		{Resource: ResourceCounters, Prefix: "orders/", Access: AccessWrite},
		{Resource: ResourceDocs, Prefix: "", Access: AccessRead},
		{Resource: ResourceAll, Prefix: "shared-", Access: AccessRead},
	}}
	for _, tc := range []struct {
		resource, name, access string
		want                   bool
	}{
		{ResourceCounters, "orders/1", AccessWrite, true},
		{ResourceCounters, "orders/1", AccessRead, true}, // write implies read
		{ResourceCounters, "orders", AccessRead, false},  // a prefix, not a pattern
		{ResourceCounters, "invoices", AccessRead, false},
		{ResourceQueues, "orders/1", AccessRead, false}, // another resource
		{ResourceDocs, "anything", AccessRead, true},
		{ResourceDocs, "anything", AccessWrite, false},
		{ResourceQueues, "shared-q", AccessRead, true},
		{ResourceQueues, "shared-q", AccessWrite, false},
		{ResourceCluster, "", AccessRead, false},
	} {
		if got := tok.Allows(tc.resource, tc.name, tc.access); got != tc.want {
			t.Errorf("%s %s:%s = %v, want %v", tc.access, tc.resource, tc.name, got, tc.want)
		}
	}
	mgmt := &ACLToken{Management: true}
	if !mgmt.Allows(ResourceCluster, "", AccessWrite) {
		t.Error("a management token lacks cluster:write")
	}
	if (&ACLToken{}).Allows(ResourceCounters, "x", AccessRead) {
		t.Error("a token without rules may read")
	}
}

func TestACLValidate(t *testing.T) {
	h := HashSecret("s")
	for _, tc := range []struct {
		p    Payload
		code Code
	}{
		{ACLTokenCreate{Accessor: "", SecretHash: h}, CodeInvalidName},
		{ACLTokenCreate{Accessor: "a b", SecretHash: h}, CodeInvalidName},
		{ACLTokenCreate{Accessor: strings.Repeat("a", 65), SecretHash: h}, CodeInvalidName},
		{ACLTokenCreate{Accessor: "a"}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Description: "\xff"}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Description: strings.Repeat("d", MaxACLDescription+1)}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Management: true, Rules: []ACLRule{{Resource: "*", Access: "read"}}}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Rules: []ACLRule{{Resource: "counter", Access: "read"}}}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Rules: []ACLRule{{Resource: "counters", Access: "admin"}}}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Rules: []ACLRule{{Resource: "cluster", Prefix: "x", Access: "read"}}}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a", SecretHash: h, Rules: make([]ACLRule, MaxACLRules+1)}, CodeBadRequest},
		{ACLTokenDelete{Accessor: "a/b"}, CodeInvalidName},
		{ACLBootstrap{Accessor: "a"}, CodeBadRequest},
		{ACLTokenCreate{Accessor: "a-1", SecretHash: h, Rules: []ACLRule{{Resource: "docs", Prefix: "cfg.", Access: "write"}}}, ""},
	} {
		err := tc.p.Validate()
		var fe *Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%+v: %v", tc.p, err)
		case tc.code != "" && (!errors.As(err, &fe) || fe.Code != tc.code):
			t.Errorf("%+v: %v, want %s", tc.p, err, tc.code)
		}
	}
}

func TestACLBootstrapCreateDelete(t *testing.T) {
	a := newApplier(t)
	boot := resultOf[ACLToken](t, "bootstrap", a.do(ACLBootstrap{Accessor: "boot", SecretHash: HashSecret("root")}))
	if !boot.Management || boot.Index != 1 || !a.s.ACLBootstrapped() {
		t.Fatalf("bootstrap: %+v", boot)
	}
	if r := a.do(ACLBootstrap{Accessor: "boot2", SecretHash: HashSecret("root2")}); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("second bootstrap: %+v", r)
	}
	rules := []ACLRule{{Resource: ResourceCounters, Prefix: "c", Access: AccessWrite}}
	app := resultOf[ACLToken](t, "create", a.do(ACLTokenCreate{Accessor: "app", SecretHash: HashSecret("app-secret"), Rules: rules}))
	rules[0].Prefix = "changed" // the caller's slice is not the state's
	if got, ok := a.s.ACLLookup(HashSecret("app-secret")); !ok || got.Accessor != "app" || got.Rules[0].Prefix != "c" || got != app {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	for _, p := range []Payload{
		ACLTokenCreate{Accessor: "app", SecretHash: HashSecret("other")},        // accessor taken
		ACLTokenCreate{Accessor: "app-2", SecretHash: HashSecret("app-secret")}, // secret taken
	} {
		if r := a.do(p); !errors.Is(r.Err, ErrConflict) {
			t.Fatalf("%+v: %+v", p, r)
		}
	}
	if r := a.do(ACLTokenDelete{Accessor: "app"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, ok := a.s.ACLLookup(HashSecret("app-secret")); ok {
		t.Fatal("a deleted token still looks up")
	}
	if _, _, err := a.s.ACLTokenByAccessor("app"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a deleted token: %v", err)
	}
	if r := a.do(ACLTokenDelete{Accessor: "app"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("second delete: %+v", r)
	}
	// A new token may reuse the accessor and secret of a deleted one.
	if r := a.do(ACLTokenCreate{Accessor: "app", SecretHash: HashSecret("app-secret")}); r.Err != nil {
		t.Fatal(r.Err)
	}
	toks, _ := a.s.ACLTokens()
	if len(toks) != 2 || toks[0].Accessor != "app" || toks[1].Accessor != "boot" {
		t.Fatalf("list: %+v", toks)
	}
}

// TestACLRestoreNeverRevivesARevokedToken: a merged backup restore leaves
// the tokens as they are; a forced one takes the backup's.
func TestACLRestoreNeverRevivesARevokedToken(t *testing.T) {
	a := newApplier(t)
	a.do(ACLBootstrap{Accessor: "boot", SecretHash: HashSecret("root")})
	a.do(ACLTokenCreate{Accessor: "leaked", SecretHash: HashSecret("leaked")})
	var backup bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	a.do(ACLTokenDelete{Accessor: "leaked"})
	a.do(ACLTokenCreate{Accessor: "fresh", SecretHash: HashSecret("fresh")})

	if r := a.do(RestoreBackup{Snapshot: backup.Bytes()}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, ok := a.s.ACLLookup(HashSecret("leaked")); ok {
		t.Fatal("a merged restore revived a revoked token")
	}
	if _, ok := a.s.ACLLookup(HashSecret("fresh")); !ok {
		t.Fatal("a merged restore dropped a working token")
	}
	if r := a.do(RestoreBackup{Snapshot: backup.Bytes(), Force: true}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, ok := a.s.ACLLookup(HashSecret("leaked")); !ok {
		t.Fatal("a forced restore did not take the backup's tokens")
	}
	if _, ok := a.s.ACLLookup(HashSecret("fresh")); ok {
		t.Fatal("a forced restore kept a token the backup lacks")
	}
	if !a.s.ACLBootstrapped() {
		t.Fatal("a forced restore lost the bootstrapped flag")
	}
}

// BenchmarkACLCheck is what authenticating a request costs: hash the
// secret, look the hash up, check one rule. It must not grow with the
// number of tokens: compare tokens=1 with tokens=100000 in the same run.
func BenchmarkACLCheck(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			s := New()
			for i := range n {
				data, err := Encode(Command{Payload: ACLTokenCreate{Accessor: fmt.Sprintf("a-%d", i), SecretHash: HashSecret(fmt.Sprint("secret-", i)),
					Rules: []ACLRule{{Resource: ResourceCounters, Prefix: "orders.", Access: AccessWrite}}}, Time: 1})
				if err != nil {
					b.Fatal(err)
				}
				if r := s.Apply(uint64(i+1), data); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			secret := fmt.Sprint("secret-", n/2)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				tok, ok := s.ACLLookup(HashSecret(secret))
				if !ok || !tok.Allows(ResourceCounters, "orders.1", AccessWrite) {
					b.Fatal("lookup failed")
				}
			}
		})
	}
}
