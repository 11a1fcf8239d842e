package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readAll returns every event of stream and the error that ended it.
func readAll(r io.Reader) ([]sseEvent, error) {
	p := newSSEReader(r)
	var out []sseEvent
	for {
		ev, err := p.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEParser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		want   []sseEvent
	}{
		{"one frame as the server writes it",
			"id: 3\nevent: change\ndata: {\"version\":3}\n\n",
			[]sseEvent{{Event: "change", Data: `{"version":3}`, ID: "3"}}},
		{"multi-line data is joined with LF",
			"event: reset\ndata: {\ndata:   \"a\": 1\ndata: }\n\n",
			[]sseEvent{{Event: "reset", Data: "{\n  \"a\": 1\n}"}}},
		{"comments and blank lines dispatch nothing",
			": keepalive\n\n:\n\n: x\nevent: change\n: in the middle\ndata: d\n\n",
			[]sseEvent{{Event: "change", Data: "d"}}},
		{"CRLF line endings",
			"id: 1\r\nevent: change\r\ndata: a\r\n\r\n",
			[]sseEvent{{Event: "change", Data: "a", ID: "1"}}},
		{"CR line endings",
			"id: 2\revent: reset\rdata: b\r\r",
			[]sseEvent{{Event: "reset", Data: "b", ID: "2"}}},
		{"mixed line endings",
			"data: a\r\ndata: b\rdata: c\n\r\n",
			[]sseEvent{{Event: "message", Data: "a\nb\nc"}}},
		{"only one leading space is dropped",
			"data:  two\n\ndata:none\n\n",
			[]sseEvent{{Event: "message", Data: " two"}, {Event: "message", Data: "none"}}},
		{"a field without colon has an empty value",
			"data\n\nevent\ndata: x\n\n",
			[]sseEvent{{Event: "message", Data: ""}, {Event: "message", Data: "x"}}},
		{"the event type does not carry over",
			"event: change\ndata: a\n\ndata: b\n\n",
			[]sseEvent{{Event: "change", Data: "a"}, {Event: "message", Data: "b"}}},
		{"the last event ID carries over, even from an event without data",
			"id: 7\n\ndata: a\n\nid: 8\ndata: b\n\ndata: c\n\n",
			[]sseEvent{{Event: "message", Data: "a", ID: "7"}, {Event: "message", Data: "b", ID: "8"}, {Event: "message", Data: "c", ID: "8"}}},
		{"an ID with NUL is ignored",
			"id: 5\ndata: a\n\nid: 6\x00\ndata: b\n\n",
			[]sseEvent{{Event: "message", Data: "a", ID: "5"}, {Event: "message", Data: "b", ID: "5"}}},
		{"retry and unknown fields are ignored",
			"retry: 1000\nfoo: bar\ndata: a\n\n",
			[]sseEvent{{Event: "message", Data: "a"}}},
		{"a leading byte-order mark is dropped",
			"\ufeffdata: a\n\n",
			[]sseEvent{{Event: "message", Data: "a"}}},
		{"colons inside the value stay",
			"data: {\"k\":\"a:b\"}\n\n",
			[]sseEvent{{Event: "message", Data: `{"k":"a:b"}`}}},
		{"an event unfinished at the end is dropped",
			"data: a\n\nevent: change\ndata: b\n",
			[]sseEvent{{Event: "message", Data: "a"}}},
		{"a line unfinished at the end is dropped",
			"data: a\n\ndata: b",
			[]sseEvent{{Event: "message", Data: "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				how string
				r   io.Reader
			}{
				{"whole", strings.NewReader(tc.stream)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tc.stream))},
				{"with read errors after data", iotest.DataErrReader(strings.NewReader(tc.stream))},
			} {
				got, err := readAll(r.r)
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%s: ended with %v, want EOF", r.how, err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("%s: got %d events %+v, want %+v", r.how, len(got), got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("%s: event %d: got %+v, want %+v", r.how, i, got[i], tc.want[i])
					}
				}
			}
		})
	}
}

func TestSSEParserLimits(t *testing.T) {
	p := newSSEReader(strings.NewReader("data: 0123456789\n\n"))
	p.max = 8
	if _, err := p.Next(); !errors.Is(err, errSSETooLong) {
		t.Errorf("a long line: want errSSETooLong, got %v", err)
	}
	p = newSSEReader(strings.NewReader("data: 01234\ndata: 56789\n\n"))
	p.max = 10
	if _, err := p.Next(); !errors.Is(err, errSSETooLong) {
		t.Errorf("long data over several lines: want errSSETooLong, got %v", err)
	}
}

// TestSSEParserDoesNotWaitPastAnEvent: a frame ending in CR could tempt a
// parser to wait for the next byte to see whether it is LF; on a quiet
// stream that would hold the event back until the next keepalive.
func TestSSEParserDoesNotWaitPastAnEvent(t *testing.T) {
	for _, frame := range []string{"data: a\r\r", "data: a\n\n", "data: a\r\n\r\n", "\ufeffdata: a\n\n"} {
		pr, pw := io.Pipe()
		go func() { _, _ = pw.Write([]byte(frame)) }() // and then stays open, silent
		got := make(chan sseEvent, 1)
		go func() {
			ev, err := newSSEReader(pr).Next()
			if err == nil {
				got <- ev
			}
		}()
		select {
		case ev := <-got:
			if ev.Data != "a" {
				t.Errorf("%q: got %+v", frame, ev)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q: the event was not dispatched while the stream stayed open", frame)
		}
		_ = pw.Close()
	}
}
