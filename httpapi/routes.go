package httpapi

// Every endpoint, with the permission it needs under ACLs, in one table:
// an endpoint cannot be added without deciding who may call it.

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/countd/countd/fsm"
)

// route is one endpoint.
type route struct {
	method, path string
	handler      echo.HandlerFunc
	perm         perm
}

func (s *Server) routes(reg *prometheus.Registry) []route {
	const (
		counters, queues, items, docs = fsm.ResourceCounters, fsm.ResourceQueues, fsm.ResourceItems, fsm.ResourceDocs
		sessions                      = fsm.ResourceSessions
		read, write                   = fsm.AccessRead, fsm.AccessWrite
	)
	get, post, put, patch, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	return []route{
		{get, "/healthz", s.healthz, openRoute},
		{get, "/readyz", s.readyz, openRoute},
		{get, "/metrics", metricsHandler(reg), clusterRead},
		// The console's files hold no data: the page asks for a token
		// itself, and every call it makes is checked like any other.
		{get, "/ui", s.consoleRedirect, openRoute},
		{get, "/ui/*", s.consoleFile, openRoute},

		{get, "/v1/cluster", s.clusterStatus, clusterRead},
		{post, "/v1/cluster/leave", s.leave, clusterWrite},
		{post, "/v1/cluster/transfer-leader", s.transferLeader, clusterWrite},
		{del, "/v1/cluster/members/:id", s.removeMember, clusterWrite},
		{get, snapshotPath, s.getSnapshot, clusterWrite}, // a backup holds everything
		{post, snapshotPath, s.restoreSnapshot, clusterWrite},

		{post, "/v1/acl/bootstrap", s.aclOnly(s.aclBootstrap), openRoute}, // works once per cluster
		{get, "/v1/acl/whoami", s.aclOnly(s.aclWhoami), anyToken},
		{post, "/v1/acl/tokens", s.aclOnly(s.aclCreate), management},
		{get, "/v1/acl/tokens", s.aclOnly(s.aclList), management},
		{get, "/v1/acl/tokens/:accessor", s.aclOnly(s.aclGet), management},
		{del, "/v1/acl/tokens/:accessor", s.aclOnly(s.aclDelete), management},

		{get, "/v1/counters", s.listCounters, inHandler(counters, read)},
		{get, "/v1/counters/:id", s.getCounter, onName(counters, read, "id")},
		{post, "/v1/counters/:id/next", s.nextCounter, onName(counters, write, "id")},
		{post, "/v1/counters/:id/add", s.addCounter, onName(counters, write, "id")},
		{put, "/v1/counters/:id", s.setCounter, onName(counters, write, "id")},
		{del, "/v1/counters/:id", s.deleteCounter, onName(counters, write, "id")},

		{post, "/v1/sessions", s.createSession, inHandler(sessions, write)},
		{get, "/v1/sessions", s.listSessions, inHandler(sessions, read)},
		{get, "/v1/sessions/:id", s.getSession, inHandler(sessions, read)},
		{post, "/v1/sessions/:id/renew", s.renewSession, inHandler(sessions, write)},
		{del, "/v1/sessions/:id", s.deleteSession, inHandler(sessions, write)},

		{get, "/v1/queues/:id", s.getQueue, onName(queues, read, "id")},
		{get, "/v1/queues/:id/members/:process", s.getQueueMember, onName(queues, read, "id")},
		{post, "/v1/queues/:id/join", s.joinQueue, onName(queues, write, "id")},
		{post, "/v1/queues/:id/leave", s.leaveQueue, onName(queues, write, "id")},
		{put, "/v1/queues/:id", s.configureQueue, onName(queues, write, "id")},
		{del, "/v1/queues/:id", s.deleteQueue, onName(queues, write, "id")},

		// Item counts, also under the distributed-counter seed's paths.
		{post, "/v1/items", s.addItems, inHandler(items, write)},
		{post, "/items", s.addItems, inHandler(items, write)},
		{get, "/v1/items/:tenant/count", s.countItems, onName(items, read, "tenant")},
		{get, "/items/:tenant/count", s.countItems, onName(items, read, "tenant")},

		{get, "/v1/docs/:name", s.getDoc, onName(docs, read, "name")},
		{get, "/v1/docs/:name/watch", s.watchDoc, onName(docs, read, "name")},
		{put, docPath, s.putDoc, onName(docs, write, "name")},
		{patch, docPath, s.patchDoc, onName(docs, write, "name")},
		{del, "/v1/docs/:name", s.deleteDoc, onName(docs, write, "name")},
	}
}
