package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// nested is a document nesting objects and arrays depth deep, alternating.
func nested(depth int) string {
	var opening, closing []string
	for i := range depth {
		if i%2 == 0 {
			opening, closing = append(opening, `{"a":`), append(closing, `}`)
		} else {
			opening, closing = append(opening, `[`), append(closing, `]`)
		}
	}
	slices.Reverse(closing)
	return strings.Join(opening, "") + "1" + strings.Join(closing, "")
}

func TestDocDepthLimit(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	putDoc(t, n.URL, "d", nested(httpapi.MaxDocDepth))
	_, idx := stateOf(t, n.URL)
	for _, method := range []string{http.MethodPut, http.MethodPatch} {
		r := sendJSON(t, method, n.URL+"/v1/docs/d", nested(httpapi.MaxDocDepth+1))
		body := checkError(t, r, http.StatusBadRequest, api.CodeBadRequest)
		if !strings.Contains(string(body["error"]), "64 deep") {
			t.Errorf("%s: error %s does not name the depth limit", method, body["error"])
		}
	}
	// The probe that found it: 10,000 deep.
	checkError(t, sendJSON(t, http.MethodPut, n.URL+"/v1/docs/d", nested(10_000)), http.StatusBadRequest, api.CodeBadRequest)
	if _, idx2 := stateOf(t, n.URL); idx2 != idx {
		t.Errorf("refused deep documents moved the applied index %d -> %d", idx, idx2)
	}
	if got := getDoc(t, n.URL, "d"); got.Version != 1 {
		t.Errorf("refused deep documents changed d: version %d", got.Version)
	}
}

func TestDocSizeLimit(t *testing.T) {
	const limit = 1024
	n := harness.StartInMemWith(t, cluster.Config{MaxDocSize: limit}, httpapi.Config{})
	value := func(pad int) string { return `{"a":"` + strings.Repeat("x", pad) + `"}` }

	// A body over the limit never reaches the log: 413.
	_, idx := stateOf(t, n.URL)
	for _, method := range []string{http.MethodPut, http.MethodPatch} {
		body := checkError(t, sendJSON(t, method, n.URL+"/v1/docs/d", value(limit)), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
		if !strings.Contains(string(body["error"]), "1024") {
			t.Errorf("%s: error %s does not name the limit", method, body["error"])
		}
	}
	if _, idx2 := stateOf(t, n.URL); idx2 != idx {
		t.Errorf("413 moved the applied index %d -> %d", idx, idx2)
	}
	putDoc(t, n.URL, "d", value(limit-8)) // exactly at the limit

	// Patches that are each small cannot grow the document past it.
	putDoc(t, n.URL, "grow", value(600))
	r := sendJSON(t, http.MethodPatch, n.URL+"/v1/docs/grow", `{"b":"`+strings.Repeat("y", 600)+`"}`,
		"Content-Type", "application/merge-patch+json", api.HeaderIdempotencyKey, "grow-1")
	body := checkError(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	if !strings.Contains(string(body["error"]), "grow") {
		t.Errorf("error %s does not name the document", body["error"])
	}
	if got := getDoc(t, n.URL, "grow"); got.Version != 1 {
		t.Errorf("a refused patch changed the document: version %d", got.Version)
	}
	// Too large is bad input: the key stays free for a corrected retry.
	patchDoc(t, n.URL, "grow", `{"b":"y"}`, "application/merge-patch+json", api.HeaderIdempotencyKey, "grow-1")
}

func TestDocIdempotentReplayOfALargeValue(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	value := `{"a":"` + strings.Repeat("x", 4000) + `"}`
	key := []string{api.HeaderIdempotencyKey, "large-1"}
	first := putDoc(t, n.URL, "d", value, key...)
	putDoc(t, n.URL, "d", `{"b":1}`)
	r := sendJSON(t, http.MethodPut, n.URL+"/v1/docs/d", value, key...)
	if r.header.Get(api.HeaderReplayed) != "true" {
		t.Fatalf("retry not replayed: %s", r)
	}
	again := checkDoc(t, r, true)
	if string(again.Value) != string(first.Value) || again.Version != first.Version || again.Index != first.Index {
		t.Fatalf("replay returned version %d index %d value of %d bytes; want the original %d/%d/%d bytes",
			again.Version, again.Index, len(again.Value), first.Version, first.Index, len(first.Value))
	}
}
