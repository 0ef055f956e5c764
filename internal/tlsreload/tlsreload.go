// Package tlsreload keeps a certificate, its key and a CA bundle read from
// files current while the process runs. A Reloader is a dskit service that
// reads the files every few seconds and swaps in what they hold once it
// parses; the TLS configs it hands out look the current set up on every
// new handshake, so a renewed certificate is served without a restart and
// connections already open keep theirs.
//
// The files are compared by content, not by modification time: Kubernetes
// updates a mounted Secret by swapping a symlink, which leaves the
// timestamps of the paths we were given unchanged.
package tlsreload

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is how often the files are read.
const DefaultInterval = 5 * time.Second

// Files names the PEM files of one TLS identity. CertPath and KeyPath go
// together; either the pair or CAPath may be empty.
type Files struct {
	CertPath string
	KeyPath  string
	CAPath   string
}

// Options tune a Reloader.
type Options struct {
	// Interval between reads of the files; DefaultInterval when 0.
	Interval time.Duration
	Logger   log.Logger
	// Registerer gets the certificate's expiry as a gauge; nil: none.
	Registerer prometheus.Registerer
	// OnReload, when set, is called with each new set instead of the info
	// line logged by default.
	OnReload func(*Snapshot)
}

// Snapshot is one parsed set of files.
type Snapshot struct {
	// Certificate is nil without CertPath.
	Certificate *tls.Certificate
	// CAs is nil without CAPath.
	CAs *x509.CertPool
	sum [sha256.Size]byte
}

// Leaf is the certificate's first element, parsed; nil without one.
func (s *Snapshot) Leaf() *x509.Certificate {
	if s.Certificate == nil {
		return nil
	}
	return s.Certificate.Leaf
}

// Reloader holds the current Snapshot of its Files.
type Reloader struct {
	*services.BasicService

	name     string
	files    Files
	every    time.Duration
	logger   log.Logger
	expiry   prometheus.Gauge
	onReload func(*Snapshot)

	cur atomic.Pointer[Snapshot]

	mu sync.Mutex // serializes Reload
	// failed is the content that last failed to parse: a set that changes
	// between reads of its files (a swap caught half way) is retried
	// silently once, a set that stays broken is logged once.
	failed    [sha256.Size]byte
	failedLog bool
}

// New reads the files once (an error here means the process cannot serve
// with them) and returns the service that keeps them current. name says
// which connections they secure, in logs and metrics.
func New(name string, files Files, opts Options) (*Reloader, error) {
	if (files.CertPath == "") != (files.KeyPath == "") {
		return nil, fmt.Errorf("%s TLS: a certificate needs both a certificate and a key file", name)
	}
	if files.CertPath == "" && files.CAPath == "" {
		return nil, fmt.Errorf("%s TLS: no files to load", name)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	r := &Reloader{name: name, files: files, every: opts.Interval, logger: log.With(opts.Logger, "tls", name), onReload: opts.OnReload}
	s, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("%s TLS: %w", name, err)
	}
	r.cur.Store(s)
	if opts.Registerer != nil && files.CertPath != "" {
		r.expiry = prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "pyrodist_tls_certificate_expiry_timestamp_seconds",
			Help:        "When the certificate in use expires (Unix seconds).",
			ConstLabels: prometheus.Labels{"connections": name},
		})
		if err := opts.Registerer.Register(r.expiry); err != nil {
			return nil, err
		}
		r.setExpiry(s)
	}
	r.BasicService = services.NewTimerService(r.every, nil, r.iteration, nil).WithName(name + "-tls-reloader")
	return r, nil
}

// Current is the set in use.
func (r *Reloader) Current() *Snapshot { return r.cur.Load() }

// Files are the files the Reloader reads.
func (r *Reloader) Files() Files { return r.files }

func (r *Reloader) iteration(context.Context) error {
	r.Reload()
	return nil
}

// Reload reads the files now and swaps in their content when it changed
// and parses; a set that does not parse leaves the current one in use. It
// reports whether a new set is in use.
func (r *Reloader) Reload() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	raw, sum, err := r.read()
	cur := r.cur.Load()
	if err == nil && sum == cur.sum {
		r.failed, r.failedLog = [sha256.Size]byte{}, false
		return false
	}
	var s *Snapshot
	if err == nil {
		s, err = parse(raw, sum)
	}
	if err != nil {
		// Log a broken set once it is seen twice in a row: the kubelet
		// swaps all files at once, but a read may straddle the swap.
		if sum == r.failed && !r.failedLog {
			level.Warn(r.logger).Log("msg", "new TLS files are not usable; still serving the previous certificate", "err", err)
			r.failedLog = true
		}
		if sum != r.failed {
			r.failed, r.failedLog = sum, false
		}
		return false
	}
	r.failed, r.failedLog = [sha256.Size]byte{}, false
	r.cur.Store(s)
	r.setExpiry(s)
	if r.onReload != nil {
		r.onReload(s)
		return true
	}
	level.Info(r.logger).Log(append([]any{"msg", "TLS files reloaded"}, s.LogValues()...)...)
	return true
}

// LogValues describe the certificate for a log line.
func (s *Snapshot) LogValues() []any {
	l := s.Leaf()
	if l == nil {
		return nil
	}
	return []any{"subject", l.Subject.String(), "serial", l.SerialNumber.Text(16), "not_after", l.NotAfter.UTC().Format(time.RFC3339)}
}

func (r *Reloader) setExpiry(s *Snapshot) {
	if r.expiry == nil {
		return
	}
	if l := s.Leaf(); l != nil {
		r.expiry.Set(float64(l.NotAfter.Unix()))
	}
}

func (r *Reloader) load() (*Snapshot, error) {
	raw, sum, err := r.read()
	if err != nil {
		return nil, err
	}
	return parse(raw, sum)
}

// rawFiles are the contents of cert, key and CA, in that order.
type rawFiles [3][]byte

func (r *Reloader) read() (rawFiles, [sha256.Size]byte, error) {
	var raw rawFiles
	h := sha256.New()
	var errs []error
	for i, p := range []string{r.files.CertPath, r.files.KeyPath, r.files.CAPath} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			// A missing file counts as content, so it is logged like one.
			b = []byte(err.Error())
		}
		raw[i] = b
		fmt.Fprintf(h, "%d:%d:", i, len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return raw, sum, errors.Join(errs...)
}

func parse(raw rawFiles, sum [sha256.Size]byte) (*Snapshot, error) {
	s := &Snapshot{sum: sum}
	if raw[0] != nil || raw[1] != nil {
		c, err := tls.X509KeyPair(raw[0], raw[1])
		if err != nil {
			return nil, fmt.Errorf("certificate and key: %w", err)
		}
		if c.Leaf == nil {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate: %w", err)
			}
		}
		s.Certificate = &c
	}
	if raw[2] != nil {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(raw[2]) {
			return nil, errors.New("CA file holds no PEM certificate")
		}
		s.CAs = p
	}
	return s, nil
}

// ServerConfig is base (client auth, versions, ALPN) serving the current
// certificate, and verifying clients against the current CAs, on every
// new handshake.
func (r *Reloader) ServerConfig(base *tls.Config) *tls.Config {
	derive := r.deriver(base, func(c *tls.Config, s *Snapshot) {
		if s.Certificate != nil {
			c.Certificates = []tls.Certificate{*s.Certificate}
		}
		if s.CAs != nil {
			c.ClientCAs = s.CAs
		}
	})
	out := base.Clone()
	out.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return derive(), nil }
	return out
}

// ClientConfig returns, for each new connection, base with the current
// CAs as roots and the current certificate as the client's.
func (r *Reloader) ClientConfig(base *tls.Config) func() *tls.Config {
	return r.deriver(base, func(c *tls.Config, s *Snapshot) {
		if s.CAs != nil {
			c.RootCAs = s.CAs
		}
		if s.Certificate != nil {
			cert := s.Certificate
			c.Certificates = nil
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
	})
}

// deriver builds base+snapshot once per snapshot, not per handshake.
func (r *Reloader) deriver(base *tls.Config, apply func(*tls.Config, *Snapshot)) func() *tls.Config {
	type derived struct {
		from *Snapshot
		cfg  *tls.Config
	}
	var last atomic.Pointer[derived]
	return func() *tls.Config {
		s := r.cur.Load()
		if d := last.Load(); d != nil && d.from == s {
			return d.cfg
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		apply(c, s)
		last.Store(&derived{from: s, cfg: c})
		return c
	}
}
