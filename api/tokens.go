package api

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// NewAccessor returns a random token accessor: a version 4 UUID. The
// server makes one when a create names none; the Go client makes its own,
// so a retried create is the same request.
func NewAccessor() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return UUIDFrom(b)
}

// UUIDFrom formats 16 bytes as a version 4 UUID (setting its version and
// variant bits): the form of accessors and session IDs.
func UUIDFrom(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// NewSecret returns a random token secret: 32 bytes, base64url.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
