package api

import "fmt"

// MaxIdempotencyKeyLen is the longest Idempotency-Key in bytes.
const MaxIdempotencyKeyLen = 128

// CheckIdempotencyKey reports why key is not a valid Idempotency-Key:
// 1–128 printable ASCII characters (space through tilde). The server
// refuses any other key with bad_request, and the client refuses to send
// one, since no retry could make it acceptable; both check this function,
// so the rule cannot drift between them.
func CheckIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("Idempotency-Key must be 1 to %d printable characters, got %d bytes", MaxIdempotencyKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return fmt.Errorf("Idempotency-Key contains a non-printable byte 0x%02x at position %d", key[i], i)
		}
	}
	return nil
}
