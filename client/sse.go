package client

// A reader of Server-Sent Events as the WHATWG HTML standard defines the
// stream (§9.2.6): lines end in CRLF, LF or CR; a line starting with ':' is
// a comment; "field: value" loses one leading space of the value; data
// lines accumulate, joined by LF; a blank line dispatches the event; an
// event left unfinished at the end of the stream is discarded.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxSSELine bounds one line and one event's data, so a broken server
// cannot make the client buffer without end. A reset event carries a whole
// document, which the server's body limit (4 MiB by default) keeps far
// below this.
const maxSSELine = 64 << 20

// errSSETooLong is returned for a line or event larger than maxSSELine.
var errSSETooLong = fmt.Errorf("server-sent event longer than %d bytes", maxSSELine)

// sseEvent is one dispatched event.
type sseEvent struct {
	// Event is the event type; "message" when the stream named none.
	Event string
	// Data is the data lines joined by "\n".
	Data string
	// ID is the stream's last event ID when the event was dispatched.
	ID string
}

// sseReader parses events from a stream.
type sseReader struct {
	r      *bufio.Reader
	max    int
	line   []byte
	skipLF bool // the last line ended in CR: an LF right after it belongs to it
	bom    bool // the optional leading byte-order mark was dealt with
	lastID string
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: maxSSELine}
}

// Next returns the next event. At the end of the stream it returns the
// reader's error (io.EOF for a clean end), dropping an unfinished event.
func (p *sseReader) Next() (sseEvent, error) {
	var (
		data    strings.Builder
		hasData bool
		event   string
		id      = p.lastID
	)
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			p.lastID = id // the standard sets it even when nothing is dispatched
			if !hasData {
				event = ""
				continue
			}
			if event == "" {
				event = "message"
			}
			return sseEvent{Event: event, Data: strings.TrimSuffix(data.String(), "\n"), ID: id}, nil
		}
		if line[0] == ':' {
			continue // a comment, such as a keepalive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if data.Len()+len(value)+1 > p.max {
				return sseEvent{}, errSSETooLong
			}
			data.Write(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id = string(value)
			}
		default:
			// "retry" and unknown fields: the client paces its own
			// reconnects, and the standard says to ignore the rest.
		}
	}
}

// readLine returns the next line without its terminator. The slice is valid
// until the next call.
func (p *sseReader) readLine() ([]byte, error) {
	p.line = p.line[:0]
	if !p.bom {
		p.bom = true
		// Peek at one byte first: waiting for three could hold back a
		// shorter first line the server has already sent.
		if b, err := p.r.Peek(1); err == nil && b[0] == 0xEF {
			if b, err := p.r.Peek(3); err == nil && string(b) == "\ufeff" {
				_, _ = p.r.Discard(3)
			}
		}
	}
	for {
		if p.skipLF {
			b, err := p.r.Peek(1)
			if err != nil {
				return nil, err
			}
			p.skipLF = false
			if b[0] == '\n' {
				_, _ = p.r.Discard(1)
			}
		}
		n := max(p.r.Buffered(), 1) // wait for more only when nothing is buffered
		buf, err := p.r.Peek(n)
		if len(buf) == 0 {
			if errors.Is(err, io.EOF) && len(p.line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			if len(p.line)+len(buf) > p.max {
				return nil, errSSETooLong
			}
			p.line = append(p.line, buf...)
			_, _ = p.r.Discard(len(buf))
			continue
		}
		if len(p.line)+i > p.max {
			return nil, errSSETooLong
		}
		p.line = append(p.line, buf[:i]...)
		p.skipLF = buf[i] == '\r'
		_, _ = p.r.Discard(i + 1)
		return p.line, nil
	}
}
