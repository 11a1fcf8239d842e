package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestCachedCounterOverHTTP(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	r := sendJSON(t, http.MethodPut, n.URL+"/v1/counters/c", `{"cache":100}`)
	var set api.Counter
	if r.status != http.StatusOK || json.Unmarshal(r.body, &set) != nil || set.Cache != 100 {
		t.Fatalf("set cache: %s", r)
	}
	checkError(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/c", `{"cache":1000001}`), http.StatusBadRequest, api.CodeBadRequest)
	_, idx := stateOf(t, n.URL)
	for want := int64(1); want <= 5; want++ {
		m, r := mint(t, n.URL, "c", "")
		if m.Value != want || indexOf(t, r) != m.Index {
			t.Fatalf("mint %d: %+v", want, m)
		}
	}
	// One reservation for five mints.
	if _, idx2 := stateOf(t, n.URL); idx2 != idx+1 {
		t.Fatalf("five cached mints moved the applied index %d -> %d, want one reservation", idx, idx2)
	}
	// The leader shows the last value minted and the cache.
	if got := getCounter(t, n.URL, "c"); got.Value != 5 || got.Cache != 100 {
		t.Fatalf("get: %+v", got)
	}
	// A retry with the same key replays; a different count is a 422.
	key := []string{api.HeaderIdempotencyKey, "cached-1"}
	first, _ := mint(t, n.URL, "c", "?count=3", key...)
	again, r := mint(t, n.URL, "c", "?count=3", key...)
	if again != first || r.header.Get(api.HeaderReplayed) != "true" {
		t.Fatalf("retry: %+v (%s), first %+v", again, r.header.Get(api.HeaderReplayed), first)
	}
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/c/next?count=4", "", key...), http.StatusUnprocessableEntity, api.CodeIdempotencyMismatch)
}
