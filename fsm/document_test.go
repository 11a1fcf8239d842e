package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func dcRead(s *State, name string) *Document {
	d, _ := s.Document(name)
	return d
}

// dcChange is a KeyChange spelled as strings for table comparisons; "" for a
// missing Old or New.
type dcChange struct{ typ, key, old, new string }

func dcChanges(keys []KeyChange) []dcChange {
	out := []dcChange{}
	for _, k := range keys {
		c := dcChange{typ: string(k.Type), key: k.Key, old: string(k.Old), new: string(k.New)}
		if k.Old == nil {
			c.old = "<nil>"
		}
		if k.New == nil {
			c.new = "<nil>"
		}
		out = append(out, c)
	}
	return out
}

// dcLast is the change a document's latest version made.
func dcLast(t *testing.T, s *State, name string) *Change {
	t.Helper()
	d := dcRead(s, name)
	reset, changes, _ := s.DocumentSince(name, d.Version-1)
	if reset != nil || len(changes) != 1 || changes[0].Version != d.Version {
		t.Fatalf("DocumentSince(%s, %d) = reset %+v, changes %+v", name, d.Version-1, reset, changes)
	}
	return changes[0]
}

func TestDocPutVersions(t *testing.T) {
	a := newApplier(t)
	d := dcDoc(t, a.do(DocPut{Name: "cfg", Value: []byte(`{"a":1}`)}))
	if !reflect.DeepEqual(*d, Document{Name: "cfg", Version: 1, Value: d.Value, Index: a.index}) || string(d.Value) != `{"a":1}` {
		t.Fatalf("first put = %+v %s", d, d.Value)
	}
	d = dcDoc(t, a.do(DocPut{Name: "cfg", Value: []byte(`{"a":2,"b":[1,2]}`)}))
	if d.Version != 2 || string(d.Value) != `{"a":2,"b":[1,2]}` || d.Index != a.index {
		t.Fatalf("second put = %+v %s", d, d.Value)
	}
	read, applied := a.s.Document("cfg")
	if !reflect.DeepEqual(read, d) || applied != a.index {
		t.Fatalf("read %+v at %d, want %+v", read, applied, d)
	}
	// Documents have their own name space.
	a.do(CounterNext{ID: "cfg", Count: 1})
	if d := dcDoc(t, a.do(DocPut{Name: "cfg", Value: []byte(`{}`)})); d.Version != 3 || string(d.Value) != `{}` {
		t.Fatalf("put of {} = %+v", d)
	}
	if nw, applied := a.s.Document("never"); !reflect.DeepEqual(*nw, Document{Name: "never"}) || applied != a.index {
		t.Fatalf("never-written document = %+v", nw)
	}
}

func TestDocValueMustBeObject(t *testing.T) {
	for _, body := range []string{``, ` `, `null`, `1`, `"s"`, `true`, `[]`, `[{"a":1}]`, `{`, `{"a":}`, `{"a":1}x`, `{"a":1}{}`, `{"a":1} 2`, `{'a':1}`} {
		for _, p := range []Payload{DocPut{Name: "d", Value: []byte(body)}, DocPatch{Name: "d", Patch: []byte(body)}} {
			a := newApplier(t)
			a.do(DocPut{Name: "d", Value: []byte(`{"keep":1}`)})
			r := a.do(p)
			if got := codeOf(r.Err); got != CodeBadRequest {
				t.Fatalf("%T %q: code %q (%v)", p, body, got, r.Err)
			}
			if a.index != 1 {
				t.Fatalf("%T %q reached the log", p, body)
			}
			if d := dcRead(a.s, "d"); d.Version != 1 || string(d.Value) != `{"keep":1}` {
				t.Fatalf("%T %q changed the document: %+v", p, body, d)
			}
		}
	}
	// Surrounding whitespace is not "more data".
	a := newApplier(t)
	if d := dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(" \n{\"a\" : 1 }\n\t")})); string(d.Value) != `{"a":1}` {
		t.Fatalf("value = %s", d.Value)
	}
}

func TestDocNameValidation(t *testing.T) {
	for _, p := range []Payload{
		DocPut{Name: "a/b", Value: []byte(`{}`)},
		DocPatch{Name: "", Patch: []byte(`{}`)},
		DocDelete{Name: ".."},
		DocPut{Name: strings.Repeat("d", MaxNameLen+1), Value: []byte(`{}`)},
	} {
		a := newApplier(t)
		if got := codeOf(a.do(p).Err); got != CodeInvalidName {
			t.Fatalf("%T: code %q", p, got)
		}
	}
}

func TestDocPreconditions(t *testing.T) {
	v := func(n uint64) *uint64 { return &n }
	tests := []struct {
		name    string
		setup   []Payload // applied first; must succeed
		p       Payload
		code    Code
		version uint64 // document version afterwards
	}{
		{"if-match right version", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(2)}}, "", 3},
		{"if-match old version", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(1)}}, CodePreconditionFailed, 2},
		{"if-match future version", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(3)}}, CodePreconditionFailed, 2},
		{"if-match any (0) on existing", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(0)}}, "", 3},
		{"if-match any (0) on absent", nil, DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(0)}}, CodePreconditionFailed, 0},
		{"if-match 1 on absent", nil, DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(1)}}, CodePreconditionFailed, 0},
		{"if-match on deleted", dcSetupDeleted(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(2)}}, CodePreconditionFailed, 2},
		{"if-match any on deleted", dcSetupDeleted(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(0)}}, CodePreconditionFailed, 2},
		{"if-none-match on absent", nil, DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfNoneMatch: true}}, "", 1},
		{"if-none-match on deleted", dcSetupDeleted(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfNoneMatch: true}}, "", 3},
		{"if-none-match on existing", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfNoneMatch: true}}, CodePreconditionFailed, 2},
		{"if-none-match on existing {}", []Payload{DocPut{Name: "d", Value: []byte(`{}`)}}, DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfNoneMatch: true}}, CodePreconditionFailed, 1},
		{"both", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(2), IfNoneMatch: true}}, CodeBadRequest, 2},
		{"if-match out of range", dcSetup2(), DocPut{Name: "d", Value: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(1<<62 + 1)}}, CodeBadRequest, 2},

		{"patch if-match right", dcSetup2(), DocPatch{Name: "d", Patch: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(2)}}, "", 3},
		{"patch if-match wrong", dcSetup2(), DocPatch{Name: "d", Patch: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(5)}}, CodePreconditionFailed, 2},
		{"patch if-match on absent", nil, DocPatch{Name: "d", Patch: []byte(`{"x":1}`), Precondition: Precondition{IfMatch: v(0)}}, CodePreconditionFailed, 0},
		{"patch if-none-match on existing", dcSetup2(), DocPatch{Name: "d", Patch: []byte(`{"x":1}`), Precondition: Precondition{IfNoneMatch: true}}, CodePreconditionFailed, 2},
		{"patch if-none-match on absent", nil, DocPatch{Name: "d", Patch: []byte(`{"x":1}`), Precondition: Precondition{IfNoneMatch: true}}, "", 1},

		{"delete if-match right", dcSetup2(), DocDelete{Name: "d", Precondition: Precondition{IfMatch: v(2)}}, "", 3},
		{"delete if-match wrong", dcSetup2(), DocDelete{Name: "d", Precondition: Precondition{IfMatch: v(1)}}, CodePreconditionFailed, 2},
		{"delete if-match on absent", nil, DocDelete{Name: "d", Precondition: Precondition{IfMatch: v(0)}}, CodePreconditionFailed, 0},
		{"delete if-match on deleted", dcSetupDeleted(), DocDelete{Name: "d", Precondition: Precondition{IfMatch: v(0)}}, CodePreconditionFailed, 2},
		{"delete if-none-match", dcSetup2(), DocDelete{Name: "d", Precondition: Precondition{IfNoneMatch: true}}, CodeBadRequest, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			for _, p := range tt.setup {
				if r := a.do(p); r.Err != nil {
					t.Fatalf("setup %+v: %v", p, r.Err)
				}
			}
			before := dcRead(a.s, "d")
			r := a.do(tt.p)
			if got := codeOf(r.Err); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, r.Err)
			}
			after := dcRead(a.s, "d")
			if after.Version != tt.version {
				t.Fatalf("version %d, want %d", after.Version, tt.version)
			}
			if tt.code != "" && !reflect.DeepEqual(before, after) {
				t.Fatalf("refused write changed the document: %+v -> %+v", before, after)
			}
			if tt.code == CodePreconditionFailed && tt.version == 0 {
				if _, ok := a.s.docs["d"]; ok {
					t.Fatal("refused write on an absent document left a record")
				}
			}
		})
	}
}

func dcSetup2() []Payload {
	return []Payload{DocPut{Name: "d", Value: []byte(`{"a":1}`)}, DocPut{Name: "d", Value: []byte(`{"a":2}`)}}
}

// dcSortedJSON is a JSON object with its keys sorted, as a document stores
// it, computed without the package's own encoder.
func dcSortedJSON(t *testing.T, s string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v) // encoding/json sorts map keys
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dcSetupDeleted() []Payload {
	return []Payload{DocPut{Name: "d", Value: []byte(`{"a":1}`)}, DocDelete{Name: "d"}}
}

// TestDocMergePatchRFC7386 runs every example of RFC 7386 appendix A whose
// original, patch and result are all objects (a document is always one),
// plus the examples whose patch is not an object, which a document refuses.
func TestDocMergePatchRFC7386(t *testing.T) {
	var tests []struct{ original, patch, result string }
	var nonObjects []string
	for _, ex := range rfc7386AppendixA {
		switch {
		case ex.patch[0] != '{':
			nonObjects = append(nonObjects, ex.patch)
		case ex.target[0] == '{':
			tests = append(tests, struct{ original, patch, result string }{ex.target, ex.patch, dcSortedJSON(t, ex.want)})
		}
	}
	if len(tests) != 10 || len(nonObjects) != 4 {
		t.Fatalf("the appendix gave %d object examples and %d non-object patches, want 10 and 4", len(tests), len(nonObjects))
	}
	tests = append(tests, []struct{ original, patch, result string }{
		// Beyond the appendix: nesting, arrays are replaced whole, nulls
		// inside arrays are kept, a null for a missing key is a no-op.
		{`{"a":{"b":{"c":1,"d":2},"e":3},"f":4}`, `{"a":{"b":{"c":null,"x":[null]},"e":null},"g":{"h":null}}`, `{"a":{"b":{"d":2,"x":[null]}},"f":4,"g":{}}`},
		{`{"a":1}`, `{"zz":null}`, `{"a":1}`},
		{`{"a":1}`, `{}`, `{"a":1}`},
		{`{"a":{"b":1}}`, `{"a":{"b":{"c":{"d":null,"e":[{"f":null}]}}}}`, `{"a":{"b":{"c":{"e":[{"f":null}]}}}}`},
		{`{"a":[1,2]}`, `{"a":{"0":"x"}}`, `{"a":{"0":"x"}}`},
		{`{"a":"s"}`, `{"a":{"k":null}}`, `{"a":{}}`},
	}...)
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d %s + %s", i, tt.original, tt.patch), func(t *testing.T) {
			a := newApplier(t)
			dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(tt.original)}))
			d := dcDoc(t, a.do(DocPatch{Name: "d", Patch: []byte(tt.patch)}))
			if string(d.Value) != tt.result || d.Version != 2 {
				t.Fatalf("patch gave %s (version %d), want %s", d.Value, d.Version, tt.result)
			}
			if read := dcRead(a.s, "d"); string(read.Value) != tt.result {
				t.Fatalf("read %s, want %s", read.Value, tt.result)
			}
		})
	}
	for _, patch := range nonObjects {
		a := newApplier(t)
		a.do(DocPut{Name: "d", Value: []byte(`{"a":"foo"}`)})
		if got := codeOf(a.do(DocPatch{Name: "d", Patch: []byte(patch)}).Err); got != CodeBadRequest {
			t.Fatalf("non-object patch %s: code %q", patch, got)
		}
	}
}

func TestDocPatchOfAbsentCreates(t *testing.T) {
	a := newApplier(t)
	d := dcDoc(t, a.do(DocPatch{Name: "d", Patch: []byte(`{"a":{"b":1,"c":null},"x":null}`)}))
	if d.Version != 1 || string(d.Value) != `{"a":{"b":1}}` {
		t.Fatalf("patch of absent = %+v %s", d, d.Value)
	}
	ch := dcLast(t, a.s, "d")
	if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, []dcChange{{"added", "a", "<nil>", `{"b":1}`}}) {
		t.Fatalf("changes = %v", got)
	}
	// An empty patch of an absent document creates {}.
	if d := dcDoc(t, a.do(DocPatch{Name: "e", Patch: []byte(`{}`)})); d.Version != 1 || string(d.Value) != `{}` {
		t.Fatalf("empty patch of absent = %+v %s", d, d.Value)
	}
	// A patch after a delete continues the versions.
	a.do(DocDelete{Name: "d"})
	if d := dcDoc(t, a.do(DocPatch{Name: "d", Patch: []byte(`{"z":true}`)})); d.Version != 3 || string(d.Value) != `{"z":true}` {
		t.Fatalf("patch of deleted = %+v %s", d, d.Value)
	}
}

func TestDocLargeNumbersExact(t *testing.T) {
	const big = `12345678901234567890123`
	a := newApplier(t)
	put := `{"n":` + big + `,"neg":-` + big + `,"f":1.000000000000000000001,"e":1E+400,"o":{"big":` + big + `}}`
	d := dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(put)}))
	want := `{"e":1E+400,"f":1.000000000000000000001,"n":` + big + `,"neg":-` + big + `,"o":{"big":` + big + `}}`
	if string(d.Value) != want {
		t.Fatalf("put stored %s\nwant       %s", d.Value, want)
	}
	// PATCH parses the stored nested object again and merges into it.
	d = dcDoc(t, a.do(DocPatch{Name: "d", Patch: []byte(`{"o":{"x":98765432109876543210987654321},"m":` + big + `}`)}))
	want = `{"e":1E+400,"f":1.000000000000000000001,"m":` + big + `,"n":` + big + `,"neg":-` + big + `,"o":{"big":` + big + `,"x":98765432109876543210987654321}}`
	if string(d.Value) != want {
		t.Fatalf("patch stored %s\nwant         %s", d.Value, want)
	}
	ch := dcLast(t, a.s, "d")
	wantCh := []dcChange{{"added", "m", "<nil>", big}, {"modified", "o", `{"big":` + big + `}`, `{"big":` + big + `,"x":98765432109876543210987654321}`}}
	if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, wantCh) {
		t.Fatalf("changes = %v", got)
	}
}

func TestDocCanonicalForm(t *testing.T) {
	tests := []struct {
		name, first, second string
		stored              string // canonical form of first
		changes             []dcChange
	}{
		{"nested key order", `{"a":{"x":1,"y":2}}`, `{"a":{"y":2,"x":1}}`, `{"a":{"x":1,"y":2}}`, []dcChange{}},
		{"top-level key order", `{"b":1,"a":2}`, `{"a":2,"b":1}`, `{"a":2,"b":1}`, []dcChange{}},
		{"whitespace", `{ "a" : [ 1 , 2 ] , "b" : { } }`, `{"a":[1,2],"b":{}}`, `{"a":[1,2],"b":{}}`, []dcChange{}},
		{"string escapes", `{"a":"\u00e9\/\u003c"}`, `{"a":"é/<"}`, `{"a":"é/<"}`, []dcChange{}},
		{"no HTML escaping", `{"h":"<b>&amp;</b>"}`, `{"h":"<b>&amp;</b>"}`, `{"h":"<b>&amp;</b>"}`, []dcChange{}},
		{"deep key order", `{"a":[{"z":{"q":1,"p":2},"y":0}]}`, `{"a":[{"y":0,"z":{"p":2,"q":1}}]}`, `{"a":[{"y":0,"z":{"p":2,"q":1}}]}`, []dcChange{}},
		{"array order matters", `{"a":[1,2]}`, `{"a":[2,1]}`, `{"a":[1,2]}`, []dcChange{{"modified", "a", "[1,2]", "[2,1]"}}},
		{"type matters", `{"a":1}`, `{"a":"1"}`, `{"a":1}`, []dcChange{{"modified", "a", "1", `"1"`}}},
		{"null is a value", `{"a":null}`, `{}`, `{"a":null}`, []dcChange{{"removed", "a", "null", "<nil>"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			d := dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(tt.first)}))
			if string(d.Value) != tt.stored {
				t.Fatalf("stored %s, want %s", d.Value, tt.stored)
			}
			d = dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(tt.second)}))
			if d.Version != 2 {
				t.Fatalf("version %d: a PUT is always a version", d.Version)
			}
			ch := dcLast(t, a.s, "d")
			if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, tt.changes) {
				t.Fatalf("changes = %v, want %v", got, tt.changes)
			}
		})
	}
}

func TestDocChangeEntries(t *testing.T) {
	a := newApplier(t)
	dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(`{"c":3,"b":2,"a":1,"e":{"x":1}}`)}))
	ch := dcLast(t, a.s, "d")
	want := []dcChange{{"added", "a", "<nil>", "1"}, {"added", "b", "<nil>", "2"}, {"added", "c", "<nil>", "3"}, {"added", "e", "<nil>", `{"x":1}`}}
	if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, want) || ch.Version != 1 || ch.Index != a.index {
		t.Fatalf("first version: %+v changes %v", ch, got)
	}
	dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(`{"a":1,"b":20,"d":4,"e":{"x":2}}`)}))
	ch = dcLast(t, a.s, "d")
	want = []dcChange{
		{"modified", "b", "2", "20"},
		{"removed", "c", "3", "<nil>"},
		{"added", "d", "<nil>", "4"},
		{"modified", "e", `{"x":1}`, `{"x":2}`},
	}
	if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, want) || ch.Version != 2 || ch.Index != a.index {
		t.Fatalf("second version: %+v changes %v", ch, got)
	}
	dcDoc(t, a.do(DocPatch{Name: "d", Patch: []byte(`{"a":null,"b":20,"e":{"y":1},"zz":"new"}`)}))
	ch = dcLast(t, a.s, "d")
	want = []dcChange{
		{"removed", "a", "1", "<nil>"},
		{"modified", "e", `{"x":2}`, `{"x":2,"y":1}`},
		{"added", "zz", "<nil>", `"new"`},
	}
	if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, want) {
		t.Fatalf("patch version: changes %v", got)
	}
	// Many keys: sorted by key bytes.
	dcDoc(t, a.do(DocPut{Name: "m", Value: []byte(`{"b":1,"B":1,"a":1,"_":1,"aa":1,"0":1,"é":1}`)}))
	var keys []string
	for _, k := range dcLast(t, a.s, "m").Keys {
		keys = append(keys, k.Key)
	}
	if !reflect.DeepEqual(keys, []string{"0", "B", "_", "a", "aa", "b", "é"}) {
		t.Fatalf("change keys not sorted: %q", keys)
	}
}

func TestDocDelete(t *testing.T) {
	a := newApplier(t)
	if r := a.do(DocDelete{Name: "absent"}); r.Err != nil || r.Value != nil {
		t.Fatalf("delete of absent = %+v", r)
	}
	if d := dcRead(a.s, "absent"); !reflect.DeepEqual(*d, Document{Name: "absent"}) {
		t.Fatalf("absent after delete = %+v", d)
	}
	if reset, changes, _ := a.s.DocumentSince("absent", 0); reset != nil || changes != nil {
		t.Fatalf("delete of absent made a version: %+v %+v", reset, changes)
	}

	dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(`{"a":1,"b":{"c":2}}`)}))
	dcDoc(t, a.do(DocPatch{Name: "d", Patch: []byte(`{"z":0}`)}))
	r := a.do(DocDelete{Name: "d"})
	if r.Err != nil || r.Value != nil {
		t.Fatalf("delete = %+v", r)
	}
	delIndex := a.index
	if d := dcRead(a.s, "d"); !reflect.DeepEqual(*d, Document{Name: "d", Version: 3, Index: delIndex}) {
		t.Fatalf("deleted document reads %+v", d)
	}
	ch := dcLast(t, a.s, "d")
	want := []dcChange{{"removed", "a", "1", "<nil>"}, {"removed", "b", `{"c":2}`, "<nil>"}, {"removed", "z", "0", "<nil>"}}
	if got := dcChanges(ch.Keys); !reflect.DeepEqual(got, want) || ch.Version != 3 || ch.Index != delIndex {
		t.Fatalf("delete version %+v changes %v", ch, got)
	}

	// Deleting again: no version, no change.
	if r := a.do(DocDelete{Name: "d"}); r.Err != nil || r.Value != nil {
		t.Fatalf("second delete = %+v", r)
	}
	if d := dcRead(a.s, "d"); d.Version != 3 || d.Index != delIndex {
		t.Fatalf("second delete moved the document: %+v", d)
	}
	if reset, changes, _ := a.s.DocumentSince("d", 3); reset != nil || changes != nil {
		t.Fatal("second delete made a version")
	}

	// Re-creation continues the versions.
	d := dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(`{"a":1}`)}))
	if d.Version != 4 || string(d.Value) != `{"a":1}` {
		t.Fatalf("re-created = %+v %s", d, d.Value)
	}
	if got := dcChanges(dcLast(t, a.s, "d").Keys); !reflect.DeepEqual(got, []dcChange{{"added", "a", "<nil>", "1"}}) {
		t.Fatalf("re-creation changes %v", got)
	}
	// Deleting an empty document is still a version, with no key changes.
	dcDoc(t, a.do(DocPut{Name: "e", Value: []byte(`{}`)}))
	a.do(DocDelete{Name: "e"})
	if d := dcRead(a.s, "e"); d.Version != 2 || d.Value != nil {
		t.Fatalf("deleted {} = %+v", d)
	}
}

func TestDocVersionsNeverRepeat(t *testing.T) {
	a := newApplier(t)
	var last uint64
	ops := []Payload{
		DocPut{Name: "d", Value: []byte(`{"a":1}`)},
		DocDelete{Name: "d"},
		DocPatch{Name: "d", Patch: []byte(`{"a":1}`)},
		DocPut{Name: "d", Value: []byte(`{"a":1}`)},
		DocDelete{Name: "d"},
		DocPut{Name: "d", Value: []byte(`{"a":1}`), Precondition: Precondition{IfNoneMatch: true}},
		DocPatch{Name: "d", Patch: []byte(`{"a":null}`)},
		DocDelete{Name: "d"},
	}
	for i, p := range ops {
		if r := a.do(p); r.Err != nil {
			t.Fatalf("op %d: %v", i, r.Err)
		}
		d := dcRead(a.s, "d")
		if d.Version != last+1 {
			t.Fatalf("op %d: version %d after %d", i, d.Version, last)
		}
		last = d.Version
	}
}

func TestDocumentSince(t *testing.T) {
	a := newApplier(t)
	a.s = NewWithOptions(Options{WatchHistory: 3})
	values := []string{`{"v":1}`, `{"v":2}`, `{"v":3,"w":0}`, `{"v":4}`, `{"v":5}`}
	var indexes []uint64
	for _, v := range values {
		dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(v)}))
		indexes = append(indexes, a.index)
	}
	cur := dcRead(a.s, "d")
	tests := []struct {
		since    uint64
		reset    bool
		versions []uint64
	}{
		{5, false, nil},
		{4, false, []uint64{5}},
		{3, false, []uint64{4, 5}},
		{2, false, []uint64{3, 4, 5}}, // the oldest version kept is 3
		{1, true, nil},
		{0, true, nil},
		{6, true, nil},
		{1 << 40, true, nil},
	}
	for _, tt := range tests {
		reset, changes, applied := a.s.DocumentSince("d", tt.since)
		if applied != a.index {
			t.Fatalf("since %d: applied %d", tt.since, applied)
		}
		if tt.reset {
			if reset == nil || !reflect.DeepEqual(reset, cur) || changes != nil {
				t.Fatalf("since %d: want a reset with %+v, got %+v, %+v", tt.since, cur, reset, changes)
			}
			continue
		}
		if reset != nil {
			t.Fatalf("since %d: unexpected reset %+v", tt.since, reset)
		}
		var got []uint64
		for _, c := range changes {
			got = append(got, c.Version)
			if c.Index != indexes[c.Version-1] {
				t.Fatalf("since %d: version %d has index %d, want %d", tt.since, c.Version, c.Index, indexes[c.Version-1])
			}
		}
		if !reflect.DeepEqual(got, tt.versions) {
			t.Fatalf("since %d: versions %v, want %v", tt.since, got, tt.versions)
		}
	}
	// The changes are the ones each version made.
	_, changes, _ := a.s.DocumentSince("d", 2)
	want := [][]dcChange{
		{{"modified", "v", "2", "3"}, {"added", "w", "<nil>", "0"}},
		{{"modified", "v", "3", "4"}, {"removed", "w", "0", "<nil>"}},
		{{"modified", "v", "4", "5"}},
	}
	for i, c := range changes {
		if got := dcChanges(c.Keys); !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("version %d changes %v, want %v", c.Version, got, want[i])
		}
	}
	dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(`{"v":6}`)}))
	if _, changes, _ := a.s.DocumentSince("d", 3); len(changes) != 3 || changes[0].Version != 4 || changes[2].Version != 6 {
		t.Fatalf("after one more write: %+v", changes)
	}

	// A never-written document: since 0 is up to date, anything ahead resets
	// to an absent document.
	if reset, changes, _ := a.s.DocumentSince("never", 0); reset != nil || changes != nil {
		t.Fatalf("never-written since 0: %+v %+v", reset, changes)
	}
	if reset, _, _ := a.s.DocumentSince("never", 2); reset == nil || !reflect.DeepEqual(*reset, Document{Name: "never"}) {
		t.Fatalf("never-written since 2: %+v", reset)
	}

	// Deleted: a reset carries no value and the delete's version.
	a.do(DocDelete{Name: "d"})
	if reset, _, _ := a.s.DocumentSince("d", 1); reset == nil || reset.Value != nil || reset.Version != 7 {
		t.Fatalf("reset of deleted = %+v", reset)
	}
	if _, changes, _ := a.s.DocumentSince("d", 6); len(changes) != 1 || changes[0].Version != 7 || len(changes[0].Keys) != 1 || changes[0].Keys[0].Type != Removed {
		t.Fatalf("delete change = %+v", changes)
	}
}

// A watcher streams the changes DocumentSince returned after the read lock
// is gone, while writes go on; the slice it holds must not change under it.
func TestDocumentSinceResultStableAfterWrites(t *testing.T) {
	for _, history := range []int{3, 1000} {
		a := newApplier(t)
		a.s = NewWithOptions(Options{WatchHistory: history})
		for i := 1; i <= history; i++ { // history full: versions 1…history kept
			dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(fmt.Sprintf(`{"i":%d}`, i))}))
		}
		_, held, _ := a.s.DocumentSince("d", 0)
		if len(held) != history || held[0] == nil || held[0].Version != 1 {
			t.Fatalf("history %d: since 0 = %d changes", history, len(held))
		}
		for i := 1; i <= 2; i++ {
			dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(fmt.Sprintf(`{"w":%d}`, i))}))
		}
		for i, ch := range held {
			if ch == nil || ch.Version != uint64(i+1) {
				t.Fatalf("history %d: held[%d] = %+v after two more writes, want version %d", history, i, ch, i+1)
			}
		}
	}
}

func TestDocumentSinceDefaultHistory(t *testing.T) {
	a := newApplier(t)
	for i := 1; i <= DefaultWatchHistory+5; i++ {
		dcDoc(t, a.do(DocPut{Name: "d", Value: []byte(fmt.Sprintf(`{"i":%d}`, i))}))
	}
	_, changes, _ := a.s.DocumentSince("d", 5)
	if len(changes) != DefaultWatchHistory || changes[0].Version != 6 {
		t.Fatalf("since 5: %d changes from %d", len(changes), changes[0].Version)
	}
	if reset, _, _ := a.s.DocumentSince("d", 4); reset == nil {
		t.Fatal("since 4 must reset: version 5 has left the history")
	}
}

func TestDocOnChange(t *testing.T) {
	var s *State
	var calls [][]Key
	var lockHeld bool
	s = NewWithOptions(Options{OnChange: func(keys []Key) {
		if !s.mu.TryRLock() {
			lockHeld = true // the read below would deadlock
			calls = append(calls, keys)
			return
		}
		s.mu.RUnlock()
		// A woken watcher reads the state right away.
		for _, k := range keys {
			switch k.Kind {
			case KindDocument:
				s.Document(k.Name)
				s.DocumentSince(k.Name, 0)
			case KindQueue:
				_, _, _ = s.Queue(k.Name)
			}
		}
		s.AppliedIndex()
		s.Snapshot()
		calls = append(calls, keys)
	}})
	a := newApplier(t)
	a.s = s
	type step struct {
		p    Payload
		want []Key // nil: no call
	}
	d := func(n string) []Key { return []Key{{Kind: KindDocument, Name: n}} }
	q := func(n string) []Key { return []Key{{Kind: KindQueue, Name: n}} }
	steps := []step{
		{CounterNext{ID: "c", Count: 1}, nil},
		{CounterAdd{ID: "c", Delta: 1}, nil},
		{CounterSet{ID: "c", Value: ptr(int64(9))}, nil},
		{CounterDelete{ID: "c"}, nil},
		{ItemsAdd{Items: []Item{{Tenant: "t", ID: "i"}}}, nil},
		{DocPut{Name: "doc", Value: []byte(`{"a":1}`)}, d("doc")},
		{DocPut{Name: "doc", Value: []byte(`{"a":1}`)}, d("doc")}, // a version, even without key changes
		{DocPatch{Name: "doc", Patch: []byte(`{"b":2}`)}, d("doc")},
		{DocPut{Name: "doc", Value: []byte(`{}`), Precondition: Precondition{IfMatch: ptr(uint64(1))}}, nil},
		{DocDelete{Name: "doc"}, d("doc")},
		{DocDelete{Name: "doc"}, nil},
		{DocDelete{Name: "never"}, nil},
		{QueueJoin{ID: "q", ProcessID: "a"}, q("q")},
		{QueueJoin{ID: "q", ProcessID: "a"}, nil}, // re-join changes nothing
		{QueueJoin{ID: "q", ProcessID: "b"}, q("q")},
		{QueueLeave{ID: "q", ProcessID: "b"}, q("q")},
		{QueueLeave{ID: "q", ProcessID: "b"}, nil},
		{QueueConfigure{ID: "q", Max: ptr(int64(1))}, q("q")},
		{QueueConfigure{ID: "q", Min: ptr(int64(2))}, nil}, // refused: min above max
		{QueueJoin{ID: "q", ProcessID: "c"}, nil},          // queue_full
		{QueueDelete{ID: "q"}, q("q")},
		{QueueDelete{ID: "q"}, nil},
		{CounterNext{ID: "q", Count: 1}, nil},
		{QueueJoin{ID: "q", ProcessID: "a"}, nil}, // wrong_type
	}
	for i, st := range steps {
		calls = nil
		a.do(st.p)
		if lockHeld {
			t.Fatalf("step %d (%T): OnChange ran with the state's lock held", i, st.p)
		}
		var want [][]Key
		if st.want != nil {
			want = [][]Key{st.want}
		}
		if !reflect.DeepEqual(calls, want) {
			t.Fatalf("step %d (%T %+v): calls %v, want %v", i, st.p, st.p, calls, want)
		}
	}

	// A replayed keyed write changes nothing and notifies nobody.
	calls = nil
	a.doKey(DocPut{Name: "k", Value: []byte(`{}`)}, "key")
	a.doKey(DocPut{Name: "k", Value: []byte(`{}`)}, "key")
	if !reflect.DeepEqual(calls, [][]Key{d("k")}) {
		t.Fatalf("keyed write and replay: calls %v", calls)
	}

	// ApplyBatch reports every change of the batch in one call.
	calls = nil
	var entries []Entry
	for _, p := range []Payload{DocPut{Name: "x", Value: []byte(`{}`)}, CounterNext{ID: "c", Count: 1}, QueueJoin{ID: "q2", ProcessID: "a"}} {
		data, err := Encode(Command{Payload: p, Time: a.now})
		if err != nil {
			t.Fatal(err)
		}
		a.index++
		entries = append(entries, Entry{Index: a.index, Data: data})
	}
	a.index++
	entries = append(entries, Entry{Index: a.index})
	a.s.ApplyBatch(entries)
	if lockHeld || !reflect.DeepEqual(calls, [][]Key{{{Kind: KindDocument, Name: "x"}, {Kind: KindQueue, Name: "q2"}}}) {
		t.Fatalf("batch: calls %v (lock held %t)", calls, lockHeld)
	}

	// Restore: one call with nil keys, after the lock is released.
	var buf strings.Builder
	if _, err := a.s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	calls = nil
	if err := a.s.Restore(strings.NewReader(buf.String())); err != nil {
		t.Fatal(err)
	}
	if lockHeld || len(calls) != 1 || calls[0] != nil {
		t.Fatalf("restore: calls %#v (lock held %t)", calls, lockHeld)
	}
	// A failed restore changes nothing and notifies nobody.
	calls = nil
	if err := a.s.Restore(strings.NewReader("garbage!")); err == nil {
		t.Fatal("garbage restored")
	}
	if calls != nil {
		t.Fatalf("failed restore notified: %v", calls)
	}
}

func TestDocIdempotentReplay(t *testing.T) {
	a := newApplier(t)
	first := a.doKey(DocPatch{Name: "d", Patch: []byte(`{"n":1}`)}, "p1")
	dcDoc(t, first)
	a.do(DocPut{Name: "d", Value: []byte(`{"n":2}`)})
	again := a.doKey(DocPatch{Name: "d", Patch: []byte(`{"n":1}`)}, "p1")
	if !again.Replayed || !reflect.DeepEqual(again.Value, first.Value) || again.Index != first.Index {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	if d := dcRead(a.s, "d"); d.Version != 2 || string(d.Value) != `{"n":2}` {
		t.Fatalf("replay applied again: %+v %s", d, d.Value)
	}
	// A refused precondition is remembered too.
	p := DocPut{Name: "d", Value: []byte(`{}`), Precondition: Precondition{IfMatch: ptr(uint64(1))}}
	r1 := a.doKey(p, "cas")
	a.do(DocPut{Name: "d", Value: []byte(`{}`)})
	r2 := a.doKey(p, "cas")
	if !errors.Is(r1.Err, ErrPreconditionFailed) || !r2.Replayed || !errors.Is(r2.Err, ErrPreconditionFailed) {
		t.Fatalf("precondition replay: %+v / %+v", r1, r2)
	}
	// The precondition is part of the request.
	if r := a.doKey(DocPut{Name: "d", Value: []byte(`{}`)}, "cas"); !errors.Is(r.Err, ErrIdempotencyMismatch) {
		t.Fatalf("same body without If-Match under the same key: %+v", r)
	}
}
