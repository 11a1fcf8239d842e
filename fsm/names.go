package fsm

// Name rules shared by the HTTP layer (which checks them before any redirect)
// and the state machine (which checks them again, so an embedded caller
// cannot put an invalid name into the log).

import "github.com/countd/countd/api"

// MaxNameLen is the longest object, tenant, process or item name in bytes.
const MaxNameLen = 256

// MaxIdempotencyKeyLen is the longest Idempotency-Key in bytes.
const MaxIdempotencyKeyLen = api.MaxIdempotencyKeyLen

// CheckName validates an object name (counter, queue, document, tenant) or a
// process ID: 1–256 bytes of [A-Za-z0-9._:@-], and not "." or "..".
func CheckName(kind, name string) error { return checkName(kind, name, false) }

// CheckItemID validates an item ID, which may also contain '/'.
func CheckItemID(id string) error { return checkName("item id", id, true) }

func checkName(kind, name string, slash bool) error {
	if name == "" {
		return errorf(CodeInvalidName, "%s must not be empty", kind)
	}
	if len(name) > MaxNameLen {
		return errorf(CodeInvalidName, "%s is %d bytes long; the limit is %d", kind, len(name), MaxNameLen)
	}
	if name == "." || name == ".." {
		return errorf(CodeInvalidName, "%s %q is reserved", kind, name)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i], slash) {
			allowed := "A-Z a-z 0-9 . _ : @ -"
			if slash {
				allowed += " /"
			}
			return errorf(CodeInvalidName, "%s %q contains %q; allowed are %s", kind, name, name[i], allowed)
		}
	}
	return nil
}

func nameByte(c byte, slash bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == ':', c == '@', c == '-':
		return true
	case c == '/':
		return slash
	}
	return false
}

// CheckIdempotencyKey validates an Idempotency-Key by the wire rule
// (api.CheckIdempotencyKey) and refuses a bad one with bad_request.
func CheckIdempotencyKey(key string) error {
	if err := api.CheckIdempotencyKey(key); err != nil {
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return nil
}
