package httpapi

// Browsers (SPEC §12): a web page an operator visits must not be able to
// drive the API through the operator's browser. A page can make the
// browser send a "simple" cross-site request without asking first (a form
// post: text/plain, multipart/form-data or urlencoded), and the browser
// then says where the page came from in Origin. So a state-changing request
// from another origin is refused, and the form types no countd client
// sends are refused outright. curl's default for -d
// (application/x-www-form-urlencoded) stays accepted as JSON: curl sends
// no Origin.

import (
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
)

// guardBrowsers refuses cross-site writes (403) and browser form bodies
// (415) before anything else looks at the request.
func (s *Server) guardBrowsers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if origin := r.Header.Get("Origin"); origin != "" && !s.sameOrigin(r, origin) {
			return refuse(api.CodeForbidden, "a state-changing request from the web page at %q is refused; "+
				"an origin that may write must be listed in -allowed-origins", origin)
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt == "text/plain" || mt == "multipart/form-data" {
				return refuse(api.CodeUnsupportedMediaType, "a body sent as %q is not read; send JSON (application/json)", ct)
			}
		}
		return next(c)
	}
}

// sameOrigin reports whether origin is this node as the request reached
// it, or one of Config.AllowedOrigins.
func (s *Server) sameOrigin(r *http.Request, origin string) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if strings.EqualFold(origin, scheme+"://"+r.Host) {
		return true
	}
	return slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool { return strings.EqualFold(o, origin) })
}
