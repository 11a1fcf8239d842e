package httpapi

// Documents: versioned JSON objects with ETag preconditions, merge patch,
// and a Server-Sent Events watch served from the local state machine, so a
// watch works on any node and outlives leader changes.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

// keepAliveEvery is how often an idle watch stream sends an SSE comment, so
// proxies keep it open and a vanished client is noticed.
const keepAliveEvery = 15 * time.Second

// catchUpWait is how long a watch that resumes ahead of this node waits for
// the node to catch up before it believes the document went back.
const catchUpWait = 2 * time.Second

// closedTimer marks a catch-up wait that has run out; receiving from it
// blocks forever, like a timer that already fired.
var closedTimer = make(<-chan time.Time)

// docPath is a document's route; writes to it are bounded by the node's
// document size limit rather than the general body limit.
const docPath = "/v1/docs/:name"

func docName(c echo.Context) (string, error) { return nameParam(c, "name", "document name") }

// docJSON renders a document as c's answer, its version as the ETag.
func docJSON(c echo.Context) func(d *fsm.Document) api.Document {
	return func(d *fsm.Document) api.Document {
		c.Response().Header().Set("ETag", etag(d.Version))
		return api.Document{Name: d.Name, Version: d.Version, Value: d.Value, Index: d.Index}
	}
}

func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

func (s *Server) getDoc(c echo.Context) error {
	name, err := s.readNamed(c, docName)
	if err != nil {
		return err
	}
	d, applied := s.node.State().Document(name)
	if d.Value == nil {
		err = refuse(api.CodeNotFound, "document %s does not exist", name)
	}
	return answer(c, d, applied, err, docJSON(c))
}

func (s *Server) putDoc(c echo.Context) error {
	return s.writeDoc(c, func(name string, body []byte, pre fsm.Precondition) fsm.Payload {
		return fsm.DocPut{Name: name, Value: body, Precondition: pre}
	})
}

func (s *Server) patchDoc(c echo.Context) error {
	// A JSON Patch (RFC 6902) is a different language; applying it as a
	// merge patch would do something the caller did not ask for.
	if ct := c.Request().Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json-patch+json") {
		return badRequest("PATCH takes a JSON merge patch (application/merge-patch+json), not a JSON Patch")
	}
	return s.writeDoc(c, func(name string, body []byte, pre fsm.Precondition) fsm.Payload {
		return fsm.DocPatch{Name: name, Patch: body, Precondition: pre}
	})
}

func (s *Server) writeDoc(c echo.Context, payload func(string, []byte, fsm.Precondition) fsm.Payload) error {
	name, pre, err := docTarget(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	if err := checkDocJSON(body); err != nil {
		return err
	}
	return reply(c, docJSON(c))(s.apply(c, payload(name, body, pre)))
}

func (s *Server) deleteDoc(c echo.Context) error {
	name, pre, err := docTarget(c)
	if err != nil {
		return err
	}
	return s.remove(c, fsm.DocDelete{Name: name, Precondition: pre})
}

// docTarget is the document a write names and the preconditions it sets.
func docTarget(c echo.Context) (string, fsm.Precondition, error) {
	name, err := docName(c)
	if err != nil {
		return "", fsm.Precondition{}, err
	}
	pre, err := preconditions(c)
	return name, pre, err
}

// preconditions reads If-Match ("<version>", W/"<version>" or *) and
// If-None-Match (only *).
func preconditions(c echo.Context) (fsm.Precondition, error) {
	var p fsm.Precondition
	if v := strings.TrimSpace(c.Request().Header.Get("If-Match")); v != "" {
		if v == "*" {
			var anyVersion uint64 // 0: any existing version
			p.IfMatch = &anyVersion
		} else {
			tag := strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
			version, err := strconv.ParseUint(tag, 10, 64)
			if err != nil {
				return p, badRequest("If-Match must be a document version such as \"3\", or *; got %s", v)
			}
			if version == 0 {
				// No document is ever at version 0, and 0 means "any"
				// inside the state machine.
				return p, refuse(api.CodePreconditionFailed, "no document is ever at version 0")
			}
			p.IfMatch = &version
		}
	}
	if v := strings.TrimSpace(c.Request().Header.Get("If-None-Match")); v != "" {
		if v != "*" {
			return p, badRequest("only If-None-Match: * is supported, got %s", v)
		}
		p.IfNoneMatch = true
	}
	return p, nil
}

// watchDoc streams a document's versions as Server-Sent Events from this
// node's state. It resumes after ?since= or Last-Event-ID; a resume point
// the node no longer has the history for gets a reset first.
func (s *Server) watchDoc(c echo.Context) error {
	name, err := docName(c)
	if err != nil {
		return err
	}
	since, resume, err := uintParam(c, "since")
	if err != nil {
		return err
	}
	// A reconnecting EventSource keeps the original URL and reports how far
	// it got in Last-Event-ID, so the header wins.
	if v := c.Request().Header.Get("Last-Event-ID"); v != "" {
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return badRequest("Last-Event-ID must be a document version, got %q", v)
		}
		since, resume = id, true
	}
	release, err := s.node.AcquireWatch()
	if err != nil {
		return err
	}
	defer release()

	st := s.node.State()
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	setIndex(c, st.AppliedIndex())
	w.WriteHeader(http.StatusOK)

	if !resume {
		d, _ := st.Document(name)
		if err := sendReset(w, d); err != nil {
			return nil
		}
		since = d.Version
	}
	w.Flush()
	watch := s.node.Watch(fsm.Key{Kind: fsm.KindDocument, Name: name})
	defer watch.Close()
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	ctx := c.Request().Context()
	// behind fires when this node has had long enough to reach a resume
	// point that is ahead of it; nil until such a resume point is seen.
	var behind <-chan time.Time
	for {
		changed := watch.Changed()
		reset, changes, _ := st.DocumentSince(name, since)
		if reset != nil && reset.Version < since && behind != closedTimer {
			// The watcher has seen versions this node has not applied yet:
			// it came from a node further ahead. Wait for this one to catch
			// up rather than send the document backwards; only if it does
			// not is the document really older (a forced restore), and then
			// the reset is the truth.
			if behind == nil {
				behind = time.After(catchUpWait)
			}
			reset = nil
		}
		if reset != nil {
			if err := sendReset(w, reset); err != nil {
				return nil
			}
			since = reset.Version
		}
		for _, ch := range changes {
			if err := sendChange(w, ch); err != nil {
				return nil
			}
			since = ch.Version
		}
		if reset != nil || len(changes) > 0 {
			w.Flush()
			continue
		}
		select {
		case <-changed:
		case <-behind:
			behind = closedTimer
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-s.node.Stopping():
			return nil
		}
	}
}

func sendReset(w io.Writer, d *fsm.Document) error {
	return sendEvent(w, d.Version, api.EventReset, api.DocReset{Version: d.Version, Index: d.Index, Value: d.Value})
}

func sendChange(w io.Writer, ch *fsm.Change) error {
	ev := api.DocChange{Version: ch.Version, Index: ch.Index, Changes: make([]api.KeyChange, len(ch.Keys))}
	for i, k := range ch.Keys {
		ev.Changes[i] = api.KeyChange{Type: string(k.Type), Key: k.Key, Old: k.Old, New: k.New}
	}
	return sendEvent(w, ch.Version, api.EventChange, ev)
}

// sendEvent writes one SSE frame. JSON from encoding/json holds no raw
// newlines, so the data fits on one line.
func sendEvent(w io.Writer, version uint64, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", version, event, b)
	return err
}
