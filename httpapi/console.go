package httpapi

import (
	"errors"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/console"
)

// consoleCSP lets the console load its own files and call this node, and
// nothing else: no inline script or style, no other origin, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var consoleFiles = console.Files()

func (s *Server) consoleRedirect(c echo.Context) error {
	return c.Redirect(http.StatusMovedPermanently, "/ui/")
}

// consoleFile serves the web console (SPEC §11): index.html at /ui/, its
// script and style beside it. The views are addressed by the URL's
// fragment (/ui/#/queues/NAME), so deep links need nothing from here.
func (s *Server) consoleFile(c echo.Context) error {
	name := c.Param("*")
	if name == "" {
		name = "index.html"
	}
	if _, err := fs.Stat(consoleFiles, name); errors.Is(err, fs.ErrNotExist) || !fs.ValidPath(name) {
		return refuse(api.CodeNotFound, "the console has no file %q", name)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	http.ServeFileFS(c.Response(), c.Request(), consoleFiles, name)
	return nil
}
