package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

// decodeJSON reads exactly one JSON object from the body into v, rejecting
// unknown fields and trailing data: a typo in a field name must not be
// silently ignored by a write.
func decodeJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body must not be empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON body: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid JSON body: unexpected data after the object")
	}
	return nil
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
		return nil, badRequest("could not read the request body: %v", err)
	}
	return body, nil
}

// bodyError turns a failed body read into a 413 when the limit was hit and
// a 400 otherwise.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest("could not read the request body: %v", err)
}

func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", te.Type, te.Value)
	}
	return err.Error()
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
