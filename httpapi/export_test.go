package httpapi

import "github.com/labstack/echo/v4"

// Routes lists the server's routes, for tests that walk them.
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }

// HasPermission reports whether the route was registered with its
// permission (from the routes table, not around it).
func (s *Server) HasPermission(method, path string) bool {
	_, ok := s.perms[method+" "+path]
	return ok
}
