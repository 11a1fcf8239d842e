package fsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// itBatch builds a batch from "tenant:item" pairs (split at the first ':').
func itBatch(pairs ...string) ItemsAdd {
	p := ItemsAdd{}
	for _, s := range pairs {
		tenant, id, _ := strings.Cut(s, ":")
		p.Items = append(p.Items, Item{Tenant: tenant, ID: id})
	}
	return p
}

func itCount(t *testing.T, s *State, tenant string) int64 {
	t.Helper()
	tc, _ := s.TenantCount(tenant)
	if tc.Tenant != tenant {
		t.Fatalf("TenantCount(%s) names %q", tenant, tc.Tenant)
	}
	return tc.Count
}

func TestItemsAddCounts(t *testing.T) {
	type step struct {
		batch      ItemsAdd
		added, dup int64
		counts     map[string]int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one new item", []step{
			{itBatch("t1:item-1"), 1, 0, map[string]int64{"t1": 1}},
		}},
		{"retry of a batch counts nothing", []step{
			{itBatch("t1:a", "t1:b", "t1:c"), 3, 0, map[string]int64{"t1": 3}},
			{itBatch("t1:a", "t1:b", "t1:c"), 0, 3, map[string]int64{"t1": 3}},
			{itBatch("t1:c", "t1:d"), 1, 1, map[string]int64{"t1": 4}},
		}},
		{"duplicates inside one batch", []step{
			{itBatch("t1:a", "t1:a", "t1:b", "t1:a", "t1:b"), 2, 3, map[string]int64{"t1": 2}},
		}},
		{"same id in two tenants is two items", []step{
			{itBatch("t1:x", "t2:x", "t1:x", "t3:y"), 3, 1, map[string]int64{"t1": 1, "t2": 1, "t3": 1}},
			{itBatch("t2:x", "t3:x"), 1, 1, map[string]int64{"t1": 1, "t2": 1, "t3": 2}},
		}},
		{"item ids may contain slashes", []step{
			{itBatch("t1:a/b", "t1:a/b/c", "t1:/", "t1:a"), 4, 0, map[string]int64{"t1": 4}},
		}},
		{"ids are case sensitive and exact", []step{
			{itBatch("t1:A", "t1:a", "t1:a.", "T1:a"), 4, 0, map[string]int64{"t1": 3, "T1": 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			for i, st := range tt.steps {
				r := a.do(st.batch)
				if r.Err != nil {
					t.Fatalf("step %d: %v", i, r.Err)
				}
				want := &ItemsAdded{Added: st.added, Duplicates: st.dup, Index: a.index}
				if !reflect.DeepEqual(r.Value, want) {
					t.Fatalf("step %d: result %+v, want %+v", i, r.Value, want)
				}
				for tenant, n := range st.counts {
					if got := itCount(t, a.s, tenant); got != n {
						t.Fatalf("step %d: %s counts %d, want %d", i, tenant, got, n)
					}
				}
			}
		})
	}
}

func TestTenantNeverWrittenCountsZero(t *testing.T) {
	a := newApplier(t)
	a.do(itBatch("t1:a"))
	a.do(CounterNext{ID: "c", Count: 1})
	tc, applied := a.s.TenantCount("unknown")
	if *tc != (TenantCount{Tenant: "unknown"}) || applied != a.index {
		t.Fatalf("unknown tenant = %+v at %d", tc, applied)
	}
	if len(a.s.tenants) != 1 {
		t.Fatal("a read created a tenant")
	}
	// Tenants have their own name space: a counter, queue or document of the
	// same name does not matter.
	a.do(QueueJoin{ID: "t1", ProcessID: "p"})
	a.do(DocPut{Name: "t1", Value: []byte(`{}`)})
	if r := a.do(itBatch("t1:b")); r.Err != nil || itCount(t, a.s, "t1") != 2 {
		t.Fatalf("items on a name shared with a queue and a document: %+v", r)
	}
}

func TestItemsBatchRejectedWhole(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen+1)
	tests := []struct {
		name  string
		batch ItemsAdd
		code  Code
	}{
		{"empty batch", ItemsAdd{}, CodeBadRequest},
		{"empty non-nil batch", ItemsAdd{Items: []Item{}}, CodeBadRequest},
		{"slash in tenant", itBatch("t1:new-1", "t/1:new-2"), CodeInvalidName},
		{"empty tenant", itBatch("t1:new-1", ":new-2"), CodeInvalidName},
		{"tenant ..", itBatch("t1:new-1", "..:new-2"), CodeInvalidName},
		{"tenant too long", itBatch("t1:new-1", long+":new-2"), CodeInvalidName},
		{"empty item id", itBatch("t1:new-1", "t1:"), CodeInvalidName},
		{"item id with space", itBatch("t1:new-1", "t1:a b"), CodeInvalidName},
		{"item id .", itBatch("t1:new-1", "t1:."), CodeInvalidName},
		{"item id ..", itBatch("t1:new-1", "t1:.."), CodeInvalidName},
		{"item id too long", itBatch("t1:new-1", "t1:"+long), CodeInvalidName},
		{"item id with non-ASCII", itBatch("t1:new-1", "t1:é"), CodeInvalidName},
		{"bad item last of many", itBatch("t1:new-1", "t2:new-2", "t3:new-3", "t1:bad?"), CodeInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			a.do(itBatch("t1:old"))
			before := a.s.Snapshot()
			r := a.do(tt.batch)
			if got := codeOf(r.Err); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, r.Err)
			}
			if r.Value != nil {
				t.Fatalf("refused batch returned %+v", r.Value)
			}
			if a.index != 1 {
				t.Fatal("invalid batch reached the log")
			}
			if !a.s.Snapshot().Equal(before) {
				t.Fatal("refused batch changed the state")
			}
			for _, tenant := range []string{"t1", "t2", "t3"} {
				want := int64(0)
				if tenant == "t1" {
					want = 1
				}
				if got := itCount(t, a.s, tenant); got != want {
					t.Fatalf("%s counts %d after a refused batch", tenant, got)
				}
			}
		})
	}
	t.Run("longest names are fine", func(t *testing.T) {
		a := newApplier(t)
		name := strings.Repeat("n", MaxNameLen)
		if r := a.do(ItemsAdd{Items: []Item{{Tenant: name, ID: name}}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	})
}

// A batch that reaches Apply without going through Encode (an embedded
// caller, a corrupt entry) is still checked whole.
func TestItemsApplyValidatesWholeBatch(t *testing.T) {
	a := newApplier(t)
	bad := ItemsAdd{Items: []Item{{Tenant: "t1", ID: "ok"}, {Tenant: "t 1", ID: "x"}}}
	e := encoder{}
	e.byte(formatVersion)
	e.byte(byte(OpItemsAdd))
	e.varint(a.now)
	e.varint(0)
	e.string("")
	bad.encode(&e)
	r := a.s.Apply(1, e.buf)
	if !errors.Is(r.Err, ErrInvalidName) || r.Value != nil {
		t.Fatalf("apply of an invalid batch = %+v", r)
	}
	if itCount(t, a.s, "t1") != 0 || len(a.s.tenants) != 0 {
		t.Fatal("part of an invalid batch was applied")
	}
}

func TestTenantIndexMovesOnlyOnAdd(t *testing.T) {
	a := newApplier(t)
	a.do(itBatch("t1:a", "t2:a"))
	first := a.index
	check := func(tenant string, count int64, index uint64) {
		t.Helper()
		tc, applied := a.s.TenantCount(tenant)
		if tc.Count != count || tc.Index != index || applied != a.index {
			t.Fatalf("%s = %+v (applied %d), want count %d index %d", tenant, tc, applied, count, index)
		}
	}
	check("t1", 1, first)
	a.do(itBatch("t1:a", "t2:b")) // t1: duplicate only; t2: adds
	second := a.index
	check("t1", 1, first)
	check("t2", 2, second)
	a.do(itBatch("t1:a", "t1:a", "t2:a", "t2:b"))
	check("t1", 1, first)
	check("t2", 2, second)
	a.do(itBatch("t1:a", "t1:z"))
	check("t1", 2, a.index)
	check("t2", 2, second)
}

func TestItemsIdempotentReplay(t *testing.T) {
	a := newApplier(t)
	first := a.doKey(itBatch("t1:a", "t1:b"), "batch-1")
	a.do(itBatch("t1:c"))
	again := a.doKey(itBatch("t1:a", "t1:b"), "batch-1")
	if !again.Replayed || !reflect.DeepEqual(again.Value, first.Value) || again.Index != first.Index {
		t.Fatalf("replay = %+v, first %+v", again, first)
	}
	if v := again.Value.(*ItemsAdded); v.Added != 2 || v.Duplicates != 0 {
		t.Fatalf("replay must return the original counts: %+v", v)
	}
	if r := a.doKey(itBatch("t1:b", "t1:a"), "batch-1"); !errors.Is(r.Err, ErrIdempotencyMismatch) {
		t.Fatalf("reordered batch under the same key: %+v", r)
	}
	if got := itCount(t, a.s, "t1"); got != 3 {
		t.Fatalf("count %d", got)
	}
}
