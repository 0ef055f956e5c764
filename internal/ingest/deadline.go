package ingest

import (
	"context"
	"net/http"
	"time"
)

// answerMargin is the part of the write timeout kept for writing the
// answer: a tenth of it, at most a second (an error body is small).
func answerMargin(writeTimeout time.Duration) time.Duration {
	return min(writeTimeout/10, time.Second)
}

// answerInTime gives a push request a deadline that leaves time to answer
// before the server's write timeout: past that timeout the client gets a
// reset instead of a status and cannot tell whether the profile was
// stored. The client's own deadline (Connect-Timeout-Ms, grpc-timeout),
// which connect applies further in, can only shorten it. The deadline
// reaches the segment-writers with each call.
func (s *Server) answerInTime(h http.Handler) http.Handler {
	wt := s.opts.WriteTimeout
	if wt <= 0 {
		return h
	}
	// The write timeout runs from the end of the request's headers, a
	// moment before the handler starts; the margin covers that too.
	budget := wt - answerMargin(wt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), budget)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
