package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/ingest/jfr"
	"github.com/pyrodist/pyrodist/internal/ingest/legacy"
	"github.com/pyrodist/pyrodist/internal/profile"
)

const formatJFR = "jfr"

// readJFR reads and converts a format=jfr request (docs/compatibility.md#jfr):
// the recording as the body, or the Java SDK's multipart form with a jfr
// file and an optional labels file (its LabelsSnapshot), either gzipped or
// not. It returns one series per profile type; on failure it has written
// the answer and returns false. Everything it holds is charged to ch.
func (s *Server) readJFR(w http.ResponseWriter, body io.Reader, contentType string, md legacy.Metadata, lim *config.Limits, ch *inflight.Charge) ([]*legacy.Series, bool) {
	var data, labels []byte
	var err error
	if strings.Contains(contentType, "multipart/form-data") {
		data, labels, err = readJFRForm(body, contentType, lim.MaxProfileSizeBytes, ch.Reserve)
	} else {
		// A raw body is the recording as it is, never inflated: Pyroscope
		// refuses a gzipped one as not JFR, and so does this.
		data, err = readBody(body)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		var slow errSlowBody
		if errors.As(err, &tooLarge) || errors.As(err, &slow) || inflight.IsExhausted(err) {
			writeReadError(w, err)
			return nil, false
		}
		writeJFRError(w, err)
		return nil, false
	}
	series, err := jfr.Convert(data, labels, md, ch.Reserve)
	if err != nil {
		writeJFRError(w, err)
		return nil, false
	}
	return series, true
}

// writeJFRError answers a JFR request that could not be converted: 429 when
// the budget is full, else 422 with code unknown, as Pyroscope answers a
// conversion error that carries no code.
func writeJFRError(w http.ResponseWriter, err error) {
	if inflight.IsExhausted(err) {
		writeConvertError(w, err, true)
		return
	}
	msg := err.Error()
	if len(msg) > maxJFRErrorLen { // names from the recording can be long
		msg = strings.ToValidUTF8(msg[:maxJFRErrorLen], "") + "..."
	}
	writeError(w, http.StatusUnprocessableEntity, connect.CodeUnknown, msg)
}

// maxJFRErrorLen bounds the message of a JFR answer.
const maxJFRErrorLen = 1024

// readJFRForm streams the SDK's multipart form part by part in memory and
// returns the (inflated) jfr and labels files. Like Pyroscope's
// loadJFRFromForm (pkg/og/convert/jfr/profile.go at 3fe6a45) it takes the
// first file of each name, ignores parts without a file name, requires a
// non-empty jfr file, and inflates each file that starts with the gzip magic
// up to maxSize bytes (0: no limit).
func readJFRForm(body io.Reader, contentType string, maxSize int, reserve func(int) error) (data, labels []byte, err error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", jfr.ErrInvalid, err)
	}
	if params["boundary"] == "" {
		return nil, nil, fmt.Errorf("%w: malformed multipart content type header", jfr.ErrInvalid)
	}
	mr := multipart.NewReader(body, params["boundary"])
	var hasJFR, hasLabels bool
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading multipart body: %w", err)
		}
		name := part.FormName()
		first := part.FileName() != "" && (name == "jfr" && !hasJFR || name == "labels" && !hasLabels)
		if !first {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, nil, fmt.Errorf("reading multipart body: %w", err)
			}
			continue
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(part); err != nil {
			return nil, nil, fmt.Errorf("reading multipart field %s: %w", name, err)
		}
		if name == "jfr" {
			data, hasJFR = buf.Bytes(), true
		} else {
			labels, hasLabels = buf.Bytes(), true
		}
		_ = part.Close()
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: jfr field is required", jfr.ErrInvalid)
	}
	if data, err = inflateJFRPart(data, maxSize, reserve); err != nil {
		return nil, nil, fmt.Errorf("loadJFRFromForm failed to decompress jfr: %w", err)
	}
	if len(labels) > 0 {
		if labels, err = inflateJFRPart(labels, maxSize, reserve); err != nil {
			return nil, nil, fmt.Errorf("loadJFRFromForm failed to decompress labels: %w", err)
		}
	}
	return data, labels, nil
}

// inflateJFRPart inflates a gzipped form file up to maxSize bytes, charging
// the inflated bytes as they grow; other files pass as they are.
func inflateJFRPart(b []byte, maxSize int, reserve func(int) error) ([]byte, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: failed to read magic", jfr.ErrInvalid)
	}
	if !profile.IsGzip(b) {
		return b, nil
	}
	var budgetErr error
	charge := func(n int) error {
		if err := reserve(n); err != nil {
			budgetErr = err
			return err
		}
		return nil
	}
	var buf []byte
	out, err := profile.Inflate(b, min(maxSize, math.MaxInt32), &buf, charge)
	var tooLarge *profile.ErrTooLarge
	switch {
	case budgetErr != nil:
		return nil, budgetErr
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: decompressed size exceeds maximum allowed size of %d bytes", jfr.ErrInvalid, maxSize)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", jfr.ErrInvalid, err)
	}
	return out, nil
}
