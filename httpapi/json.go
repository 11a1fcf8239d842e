package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

// decodeJSON is the one decoder of request bodies: exactly one JSON value
// into v, strictly (SPEC §12). A write must never do something other than
// what was sent, so a typo in a field name, a name in the wrong case, a
// member given twice (encoding/json keeps the last: {"delta":1,"delta":2}
// added 2), invalid UTF-8 (which encoding/json silently replaces) and
// trailing data are all 400s. It uses the JSON v2 decoder
// (go-json-experiment/json), which is strict in all these ways by default.
func decodeJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body must not be empty")
	}
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return badRequest("invalid JSON body: %s", jsonErrorText(err))
	}
	return nil
}

// MaxDocDepth is how deeply a document may nest objects and arrays (SPEC
// §12). Deeper documents were accepted and then could not be read back by
// clients whose decoders stop earlier, nor by a running watch.
const MaxDocDepth = 64

// checkDocJSON is decodeJSON's syntax rules for a body kept as it is (a
// document): no member twice in an object, valid UTF-8, one value; and no
// nesting deeper than MaxDocDepth.
func checkDocJSON(body []byte) error {
	// A decoder's defaults are RFC 7493's (I-JSON): what decodeJSON does.
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body must not be empty")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	for {
		if _, err := dec.ReadToken(); err != nil {
			return badRequest("invalid JSON body: %s", jsonErrorText(err))
		}
		if dec.StackDepth() > MaxDocDepth {
			return badRequest("a document may nest objects and arrays at most %d deep", MaxDocDepth)
		}
		if dec.StackDepth() == 0 {
			// One value read; only whitespace may follow.
			if _, err := dec.ReadToken(); err != io.EOF {
				return badRequest("invalid JSON body: unexpected data after the value")
			}
			return nil
		}
	}
}

// readBody reads a whole body that limitBody has bounded to limit: one
// over the limit is a 413, any other failure to read it a 400.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge(limit)
		}
		return nil, bodyError(err)
	}
	return body, nil
}

// bodyError turns a failed body read into a 413 when the limit was hit, a
// 408 when the body did not arrive within the body timeout, and a 400
// otherwise.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return refuse(api.CodeRequestTimeout, "the request body did not arrive within the body timeout; send it at once")
	}
	return badRequest("could not read the request body: %v", err)
}

// jsonErrorText says what is wrong with a body in words for a person:
// where (a field's path), and what was expected as a JSON kind, never a Go
// type's name.
func jsonErrorText(err error) string {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		where := "the body"
		if se.JSONPointer != "" {
			where = fmt.Sprintf("field %q", strings.TrimPrefix(string(se.JSONPointer), "/"))
		}
		switch {
		case errors.Is(se.Err, jsonv2.ErrUnknownName):
			return fmt.Sprintf("unknown %s (field names are case-sensitive)", where)
		case se.GoType != nil:
			got := ""
			if v := string(se.JSONValue); v != "" {
				if len(v) > 40 {
					v = v[:40] + "…"
				}
				got = ", got " + v
			} else if se.JSONKind != 0 {
				got = ", got " + kindOfJSON(se.JSONKind)
			}
			return fmt.Sprintf("%s must be %s%s", where, expected(se.GoType), got)
		}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return fmt.Sprintf("member %q appears twice in one object", strings.TrimPrefix(string(syn.JSONPointer), "/"))
		case strings.Contains(syn.Err.Error(), "UTF-8"):
			return fmt.Sprintf("invalid UTF-8 at byte %d", syn.ByteOffset)
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return "the JSON ends early"
		}
		return fmt.Sprintf("%v at byte %d", syn.Err, syn.ByteOffset)
	}
	return "not valid JSON"
}

// expected names what a Go type accepts, as a JSON kind.
func expected(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer (64-bit, signed)"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

func kindOfJSON(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '[':
		return "a list"
	}
	return "an object"
}

// nameParam reads a path parameter as a name. echo routes on the raw path
// and leaves parameters escaped, and "%61" names the same byte as "a", so
// it is unescaped before the name rules are checked.
func nameParam(c echo.Context, param, what string) (string, error) {
	raw := c.Param(param)
	name, err := url.PathUnescape(raw)
	if err != nil {
		return "", refuse(api.CodeInvalidName, "%s %q is not valid percent-encoding", what, raw)
	}
	return name, fsm.CheckName(what, name)
}

// pageParams reads a list's ?after= and ?limit= (1 to api.DefaultPageSize,
// which is also the default).
func pageParams(c echo.Context) (after string, limit int, err error) {
	n, err := intParam(c, "limit", api.DefaultPageSize)
	if err != nil {
		return "", 0, err
	}
	if n < 1 || n > api.DefaultPageSize {
		return "", 0, badRequest("limit must be 1 to %d, got %d", api.DefaultPageSize, n)
	}
	return c.QueryParam("after"), int(n), nil
}

// intParam parses an optional integer query parameter.
func intParam(c echo.Context, name string, def int64) (int64, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest("query parameter %s must be an integer, got %q", name, s)
	}
	return v, nil
}

// uintParam parses an optional unsigned query parameter and says whether it
// was given.
func uintParam(c echo.Context, name string) (uint64, bool, error) {
	s := c.QueryParam(name)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, badRequest("query parameter %s must be a non-negative integer, got %q", name, s)
	}
	return v, true, nil
}

// boolParam parses an optional boolean query parameter.
func boolParam(c echo.Context, name string) (bool, error) {
	s := c.QueryParam(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("query parameter %s must be true or false, got %q", name, s)
	}
	return v, nil
}
