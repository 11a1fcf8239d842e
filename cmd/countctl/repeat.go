package main

// Long-running commands (counter next --continuous, queue wait) repeat
// requests for as long as they run. Each request is bounded by --timeout
// and already retried by the client across nodes; one that still fails is
// repeated after the one backoff of internal/retry, unless the cluster
// refused it, which no repeat can change.

import (
	"context"
	"errors"
	"time"

	"github.com/countd/countd/client"
	"github.com/countd/countd/internal/retry"
)

// maxRepeatBackoff caps the pause before a failed request is repeated. The
// client has already spent up to --timeout retrying it; this only keeps a
// node that answers a 5xx at once from being asked in a tight loop.
const maxRepeatBackoff = time.Second

// repeat runs request after request, each with a context bounded by
// --timeout, and hands every answer to handle, until handle reports done
// or fails. A request that fails is noted on stderr when notes is set and
// repeated after a backoff, unless the cluster refused it (then repeat
// returns that error); an answer resets the backoff. When countctl is
// interrupted, repeat returns a.ctx's error.
func repeat[T any](a *app, notes bool, request func(ctx context.Context) (T, error), handle func(T) (done bool, err error)) error {
	bo := retry.New(maxRepeatBackoff)
	for {
		ctx, cancel := a.requestCtx()
		answer, err := request(ctx)
		cancel()
		switch {
		case a.ctx.Err() != nil:
			return a.ctx.Err()
		case err == nil:
			if done, err := handle(answer); done || err != nil {
				return err
			}
			bo.Reset()
			continue
		case refused(err):
			return err
		}
		if notes {
			a.note("retrying", "error", err)
		}
		if err := bo.Wait(a.ctx); err != nil {
			return err
		}
	}
}

// refused reports whether err is the cluster's refusal of the request
// itself (a 4xx): repeating it would only be refused again.
func refused(err error) bool {
	var apiErr *client.Error
	return errors.As(err, &apiErr) && apiErr.Status < 500
}
