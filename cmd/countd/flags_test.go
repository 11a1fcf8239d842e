package main

import (
	"strings"
	"testing"
)

// TestRESPFlags: the Redis-protocol flags refuse what cannot mean
// anything, with a sentence naming the flag.
func TestRESPFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-resp-addr", "127.0.0.1:6379"}, ""},
		{[]string{"-resp-addr", "127.0.0.1:6379", "-resp-redirect", "moved"}, ""},
		{[]string{"-resp-redirect", "ask"}, "-resp-redirect must be try or moved"},
		{[]string{"-resp-idle-timeout", "0s"}, "-resp-idle-timeout must be positive"},
		{[]string{"-resp-max-pipeline", "0"}, "-resp-max-pipeline must be at least 1"},
		{[]string{"-resp-addr", "0.0.0.0:6379"}, "-resp-addr"},
	} {
		_, err := parse(t, tc.args...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}
