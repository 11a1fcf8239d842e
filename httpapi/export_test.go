package httpapi

import "github.com/labstack/echo/v4"

// Routes lists the server's routes, for tests that walk them.
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }

// HasPermission reports whether routePerms declares the route's
// permission.
func HasPermission(method, path string) bool {
	_, ok := routePerms[method+" "+path]
	return ok
}
