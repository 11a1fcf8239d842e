// Package console holds the web console's assets, embedded in the binary
// so that it works offline and needs no CDN (SPEC §11). It has no logic of
// its own: the page talks to the node's /v1 API, and httpapi serves these
// files at /ui/.
package console

import (
	"embed"
	"io/fs"
)

//go:embed ui
var assets embed.FS

// Files are the console's files: index.html, app.js, style.css.
func Files() fs.FS {
	sub, err := fs.Sub(assets, "ui")
	if err != nil {
		panic("console: the embedded ui directory is missing: " + err.Error())
	}
	return sub
}
