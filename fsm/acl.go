package fsm

// ACL tokens (SPEC §7): replicated token objects holding only a SHA-256
// hash of each secret, never the secret. The node that takes a request
// hashes the secret it presents and looks the hash up in its own state, so
// a token works on every node from the index that created it, and stops
// working on each node at the index that deleted it. A management token
// may do anything; any other has a list of rules, each granting read or
// write (write implies read) on names that start with a prefix, for one
// kind of resource or all of them.

import (
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// ACL limits.
const (
	// MaxACLRules bounds the rules of one token.
	MaxACLRules = 100
	// MaxACLDescription bounds a token's description, in bytes.
	MaxACLDescription = 256
	// maxAccessorLen bounds an accessor ID.
	maxAccessorLen = 64
)

// Snapshot and result encodings. Every tag is persisted: never renumber.
// The ACL section (record tag 7) holds a record per token and one saying
// the cluster is bootstrapped; a token is result tag 9.
const (
	recACL             byte = 7
	valACLToken        byte = 9
	aclRecToken        byte = 1
	aclRecBootstrapped byte = 2
)

// Access levels of a rule.
const (
	AccessRead  = "read"
	AccessWrite = "write"
)

// Resources a rule can name; ResourceAll is every one of them.
const (
	ResourceCounters = "counters"
	ResourceQueues   = "queues"
	ResourceItems    = "items"
	ResourceDocs     = "docs"
	ResourceSessions = "sessions"
	ResourceCluster  = "cluster"
	ResourceAll      = "*"
)

var aclResources = []string{ResourceCounters, ResourceQueues, ResourceItems, ResourceDocs, ResourceSessions, ResourceCluster, ResourceAll}

// ACLRule grants Access on the names of Resource that start with Prefix
// ("" is every name; for the cluster resource the name is always "").
type ACLRule struct {
	Resource string
	Prefix   string
	Access   string
}

// SecretHash is what the state keeps of a token's secret.
type SecretHash [sha256.Size]byte

// HashSecret hashes a token's secret the one way every node does.
func HashSecret(secret string) SecretHash { return sha256.Sum256([]byte(secret)) }

// ACLToken is a token as reads and results show it: never the secret, nor
// its hash.
type ACLToken struct {
	Accessor    string
	Description string
	Management  bool
	Rules       []ACLRule
	// Index is the log index that created the token.
	Index uint64
}

// Allows reports whether the token grants access on the named object of a
// resource. The cluster resource has no names: pass "".
func (t *ACLToken) Allows(resource, name, access string) bool {
	if t.Management {
		return true
	}
	for _, r := range t.Rules {
		if (r.Resource == resource || r.Resource == ResourceAll) && strings.HasPrefix(name, r.Prefix) &&
			(r.Access == AccessWrite || access == AccessRead) {
			return true
		}
	}
	return false
}

// aclTable is the replicated token store. Tokens are never changed after
// creation, so a token read returns may share its rules.
type aclTable struct {
	byAccessor map[string]aclEntry
	byHash     map[SecretHash]*ACLToken
	// bootstrapped is set by the first ACLBootstrap, for good.
	bootstrapped bool
}

func newACLTable() aclTable {
	return aclTable{byAccessor: map[string]aclEntry{}, byHash: map[SecretHash]*ACLToken{}}
}

func (t *aclTable) add(tok *ACLToken, h SecretHash) {
	t.byAccessor[tok.Accessor] = aclEntry{tok, h}
	t.byHash[h] = tok
}

// ACLLookup finds the token whose secret hashes to h: O(1), under the read
// lock only.
func (s *State) ACLLookup(h SecretHash) (*ACLToken, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	tok, ok := s.acl.byHash[h]
	return tok, ok
}

// ACLTokenByAccessor reads one token.
func (s *State) ACLTokenByAccessor(accessor string) (*ACLToken, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.acl.byAccessor[accessor]
	if !ok {
		return nil, s.applied, errorf(CodeNotFound, "no token with accessor %s", accessor)
	}
	return e.tok, s.applied, nil
}

// ACLTokens lists every token, by accessor.
func (s *State) ACLTokens() ([]*ACLToken, uint64) {
	page, _, applied := s.ACLTokenPage("", math.MaxInt)
	return page, applied
}

// ACLTokenPage is one page of the token list: up to limit tokens whose
// accessors sort after after; more reports whether a later page has any.
func (s *State) ACLTokenPage(after string, limit int) (page []*ACLToken, more bool, applied uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names, more := pageOf(sortedKeys(s.acl.byAccessor), after, limit, nil)
	page = make([]*ACLToken, len(names))
	for i, a := range names {
		page[i] = s.acl.byAccessor[a].tok
	}
	return page, more, s.applied
}

// ACLBootstrapped reports whether the cluster's first management token was
// ever created.
func (s *State) ACLBootstrapped() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.acl.bootstrapped
}

// ACLBootstrap creates the cluster's first management token, once.
type ACLBootstrap struct {
	Accessor    string
	SecretHash  SecretHash
	Description string
}

// ACLTokenCreate creates a token.
type ACLTokenCreate struct {
	Accessor    string
	SecretHash  SecretHash
	Description string
	Management  bool
	Rules       []ACLRule
}

// ACLTokenDelete deletes a token: it stops working at this entry's index.
type ACLTokenDelete struct {
	Accessor string
}

// Op implements Payload.
func (ACLBootstrap) Op() Op { return OpACLBootstrap }

// Op implements Payload.
func (ACLTokenCreate) Op() Op { return OpACLTokenCreate }

// Op implements Payload.
func (ACLTokenDelete) Op() Op { return OpACLTokenDelete }

// Validate implements Payload.
func (p ACLBootstrap) Validate() error {
	return ACLTokenCreate{Accessor: p.Accessor, SecretHash: p.SecretHash, Description: p.Description, Management: true}.Validate()
}

// Validate implements Payload.
func (p ACLTokenCreate) Validate() error {
	if err := CheckAccessor(p.Accessor); err != nil {
		return err
	}
	if p.SecretHash == (SecretHash{}) {
		return errorf(CodeBadRequest, "a token needs a secret")
	}
	if len(p.Description) > MaxACLDescription || !utf8.ValidString(p.Description) {
		return errorf(CodeBadRequest, "a description must be valid UTF-8 of at most %d bytes", MaxACLDescription)
	}
	if p.Management && len(p.Rules) > 0 {
		return errorf(CodeBadRequest, "a management token may do anything; give it no rules")
	}
	if len(p.Rules) > MaxACLRules {
		return errorf(CodeBadRequest, "a token may have at most %d rules, got %d", MaxACLRules, len(p.Rules))
	}
	for i, r := range p.Rules {
		if !slices.Contains(aclResources, r.Resource) {
			return errorf(CodeBadRequest, "rule %d: resource must be one of %s, got %q", i+1, strings.Join(aclResources, ", "), r.Resource)
		}
		if r.Access != AccessRead && r.Access != AccessWrite {
			return errorf(CodeBadRequest, "rule %d: access must be %q or %q, got %q", i+1, AccessRead, AccessWrite, r.Access)
		}
		if len(r.Prefix) > MaxNameLen || !utf8.ValidString(r.Prefix) {
			return errorf(CodeBadRequest, "rule %d: a prefix must be valid UTF-8 of at most %d bytes", i+1, MaxNameLen)
		}
		if r.Resource == ResourceCluster && r.Prefix != "" {
			return errorf(CodeBadRequest, "rule %d: the cluster resource has no names; leave its prefix empty", i+1)
		}
	}
	return nil
}

// Validate implements Payload.
func (p ACLTokenDelete) Validate() error { return CheckAccessor(p.Accessor) }

// CheckAccessor validates a token's accessor ID: 1–64 letters, digits and
// dashes.
func CheckAccessor(a string) error {
	if a == "" || len(a) > maxAccessorLen {
		return errorf(CodeInvalidName, "an accessor must be 1 to %d characters, got %d", maxAccessorLen, len(a))
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return errorf(CodeInvalidName, "an accessor holds letters, digits and dashes only; got %q", a)
		}
	}
	return nil
}

func (p ACLBootstrap) encode(e *encoder) {
	e.string(p.Accessor)
	e.raw(p.SecretHash[:])
	e.string(p.Description)
}

func (p ACLTokenCreate) encode(e *encoder) {
	e.string(p.Accessor)
	e.raw(p.SecretHash[:])
	e.string(p.Description)
	e.bool(p.Management)
	encodeRules(e, p.Rules)
}

func (p ACLTokenDelete) encode(e *encoder) { e.string(p.Accessor) }

func encodeRules(e *encoder, rules []ACLRule) {
	e.uvarint(uint64(len(rules)))
	for _, r := range rules {
		e.string(r.Resource)
		e.string(r.Prefix)
		e.string(r.Access)
	}
}

func decodeRules(d *decoder) []ACLRule {
	n := d.count(3)
	if n == 0 {
		return nil
	}
	rules := make([]ACLRule, n)
	for i := range rules {
		rules[i] = ACLRule{Resource: d.string(), Prefix: d.string(), Access: d.string()}
	}
	return rules
}

func decodeHash(d *decoder) SecretHash {
	var h SecretHash
	for i := range h {
		h[i] = d.byte()
	}
	return h
}

func (p ACLBootstrap) apply(s *State, index uint64) (any, error) {
	if s.acl.bootstrapped {
		return nil, errorf(CodeConflict, "ACLs are already bootstrapped; ask a holder of a management token for a token")
	}
	tok, err := ACLTokenCreate{Accessor: p.Accessor, SecretHash: p.SecretHash, Description: p.Description, Management: true}.apply(s, index)
	if err == nil {
		s.acl.bootstrapped = true
	}
	return tok, err
}

func (p ACLTokenCreate) apply(s *State, index uint64) (any, error) {
	if _, ok := s.acl.byAccessor[p.Accessor]; ok {
		return nil, errorf(CodeConflict, "a token with accessor %s exists", p.Accessor)
	}
	if _, ok := s.acl.byHash[p.SecretHash]; ok {
		return nil, errorf(CodeConflict, "a token with that secret exists; every token needs its own secret")
	}
	tok := &ACLToken{Accessor: p.Accessor, Description: p.Description, Management: p.Management, Rules: slices.Clone(p.Rules), Index: index}
	s.acl.add(tok, p.SecretHash)
	return tok, nil
}

func (p ACLTokenDelete) apply(s *State, _ uint64) (any, error) {
	e, ok := s.acl.byAccessor[p.Accessor]
	if !ok {
		return nil, errorf(CodeNotFound, "no token with accessor %s", p.Accessor)
	}
	delete(s.acl.byAccessor, p.Accessor)
	delete(s.acl.byHash, e.hash)
	return nil, nil
}

func init() {
	register(OpACLBootstrap, "acl.bootstrap", func(d *decoder) Payload {
		return ACLBootstrap{Accessor: d.string(), SecretHash: decodeHash(d), Description: d.string()}
	})
	register(OpACLTokenCreate, "acl.token.create", func(d *decoder) Payload {
		return ACLTokenCreate{Accessor: d.string(), SecretHash: decodeHash(d), Description: d.string(), Management: d.bool(), Rules: decodeRules(d)}
	})
	register(OpACLTokenDelete, "acl.token.delete", func(d *decoder) Payload { return ACLTokenDelete{Accessor: d.string()} })
	registerSection(section{name: "acl", tag: recACL, copy: copyACL, read: readACL})
	registerResult(valACLToken, encodeToken, decodeToken)
	registerRestorer(restoreACL)
}

// aclEntry is a stored token with the hash of its secret; tokens never
// change, so a snapshot copies entries as they are.
type aclEntry struct {
	tok  *ACLToken
	hash SecretHash
}

func copyACL(s *State) func(*recordWriter) error {
	toks := make([]aclEntry, 0, len(s.acl.byAccessor))
	for _, a := range sortedKeys(s.acl.byAccessor) {
		toks = append(toks, s.acl.byAccessor[a])
	}
	bootstrapped := s.acl.bootstrapped
	return func(w *recordWriter) error {
		if bootstrapped {
			w.rec.byte(aclRecBootstrapped)
			if err := w.put(recACL); err != nil {
				return err
			}
		}
		for _, t := range toks {
			w.rec.byte(aclRecToken)
			w.rec.raw(t.hash[:])
			encodeToken(&w.rec, t.tok)
			if err := w.put(recACL); err != nil {
				return err
			}
		}
		return nil
	}
}

func readACL(d *decoder) func(*State) error {
	switch kind := d.byte(); kind {
	case aclRecBootstrapped:
		return func(st *State) error {
			st.acl.bootstrapped = true
			return nil
		}
	case aclRecToken:
		h := decodeHash(d)
		tok := decodeToken(d)
		return func(st *State) error {
			create := ACLTokenCreate{Accessor: tok.Accessor, SecretHash: h, Description: tok.Description, Management: tok.Management, Rules: tok.Rules}
			if err := create.Validate(); err != nil {
				return fmt.Errorf("token %s: %w", tok.Accessor, err)
			}
			if _, dup := st.acl.byAccessor[tok.Accessor]; dup {
				return fmt.Errorf("token %s appears twice", tok.Accessor)
			}
			if _, dup := st.acl.byHash[h]; dup {
				return fmt.Errorf("token %s shares its secret with another", tok.Accessor)
			}
			st.acl.add(tok, h)
			return nil
		}
	default:
		d.fail(fmt.Errorf("unknown ACL record kind %d", kind))
		return func(*State) error { return nil }
	}
}

func encodeToken(e *encoder, t *ACLToken) {
	e.string(t.Accessor)
	e.string(t.Description)
	e.bool(t.Management)
	encodeRules(e, t.Rules)
	e.uvarint(t.Index)
}

func decodeToken(d *decoder) *ACLToken {
	return &ACLToken{Accessor: d.string(), Description: d.string(), Management: d.bool(), Rules: decodeRules(d), Index: d.uvarint()}
}

// restoreACL: a merged restore leaves the tokens as they are, so a backup
// can neither revive a revoked token nor drop a working one; a forced
// restore takes the backup's tokens, and whether it was bootstrapped,
// verbatim.
func restoreACL(s, b *State, force bool, _ uint64) {
	if force {
		s.acl = b.acl
	}
}
