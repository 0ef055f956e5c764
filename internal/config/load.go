package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.yaml.in/yaml/v3"
)

// ConfigFileFlag names the YAML config file; ExpandEnvFlag turns on
// ${VAR} expansion in it (both as in Pyroscope).
const (
	ConfigFileFlag = "config.file"
	ExpandEnvFlag  = "config.expand-env"
)

// Load builds the distributor's config the dskit way: every flag's default,
// then the YAML file named by -config.file (unknown keys are an error), then
// the flags given on the command line, which win. It registers the config's
// flags and -config.file on fs; callers register their own flags (log level)
// on fs before. Flags that may repeat (-memberlist.join) add to the file's list.
func Load(fs *flag.FlagSet, args []string) (*Config, error) {
	c := &Config{}
	c.RegisterFlags(fs)
	var file string
	var expand bool
	fs.StringVar(&file, ConfigFileFlag, "", "Path of the YAML config file. Flags given on the command line override its values.")
	fs.BoolVar(&expand, ExpandEnvFlag, false, "Expand ${VAR} and $VAR in the config file with environment variables.")
	given := preParse(fs, args)
	if path := given[ConfigFileFlag]; path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		if expand, _ := strconv.ParseBool(given[ExpandEnvFlag]); expand {
			data = []byte(os.ExpandEnv(string(data)))
		}
		if err := decodeStrict(data, c); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c, nil
}

// preParse reads the flags given in args without applying them, so the
// config file can be applied between the defaults and the explicit flags.
// Errors are left to the real parse, which reports them properly.
func preParse(fs *flag.FlagSet, args []string) map[string]string {
	shadow := flag.NewFlagSet("", flag.ContinueOnError)
	shadow.SetOutput(io.Discard)
	shadow.Usage = func() {}
	values := map[string]*rawValue{}
	fs.VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		v := &rawValue{isBool: ok && b.IsBoolFlag()}
		values[f.Name] = v
		shadow.Var(v, f.Name, "")
	})
	_ = shadow.Parse(args)
	out := map[string]string{}
	for name, v := range values {
		if v.set {
			out[name] = v.s
		}
	}
	return out
}

// rawValue records a flag's text, whatever its type.
type rawValue struct {
	s           string
	set, isBool bool
}

func (v *rawValue) String() string     { return v.s }
func (v *rawValue) Set(s string) error { v.s, v.set = s, true; return nil }
func (v *rawValue) IsBoolFlag() bool   { return v.isBool }

// decodeStrict decodes YAML into v over what v holds; unknown keys are an error.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// TenantLimits serves each tenant's limits: the config file's defaults with
// the tenant's entry of overrides.yaml applied on top. The file is re-read
// every RuntimeConfig.Period and applied when its content changed; a file
// that does not parse keeps the previous overrides and is logged.
type TenantLimits struct {
	defaults Limits
	rc       RuntimeConfig
	logger   log.Logger

	overrides atomic.Pointer[map[string]*Limits]
	mu        sync.Mutex // serializes reloads
	lastSum   [32]byte
}

// NewTenantLimits loads the overrides file, if one is configured. A file
// that is missing or bad at start is an error: better not to start than to
// run with limits nobody meant.
func NewTenantLimits(defaults Limits, rc RuntimeConfig, logger log.Logger) (*TenantLimits, error) {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	t := &TenantLimits{defaults: defaults, rc: rc, logger: logger}
	empty := map[string]*Limits{}
	t.overrides.Store(&empty)
	if rc.File != "" {
		if _, err := t.Reload(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ForTenant returns the tenant's limits. The result is shared: do not modify it.
func (t *TenantLimits) ForTenant(tenant string) *Limits {
	if l, ok := (*t.overrides.Load())[tenant]; ok {
		return l
	}
	return &t.defaults
}

// Reload re-reads the overrides file and applies it when its content
// changed. It reports whether anything was applied.
func (t *TenantLimits) Reload() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data, err := os.ReadFile(t.rc.File)
	if err != nil {
		return false, fmt.Errorf("reading overrides file: %w", err)
	}
	sum := sha256.Sum256(data)
	if sum == t.lastSum {
		return false, nil
	}
	next, err := parseOverrides(data, t.defaults)
	if err != nil {
		return false, fmt.Errorf("overrides file %s: %w", t.rc.File, err)
	}
	t.overrides.Store(&next)
	t.lastSum = sum
	return true, nil
}

// parseOverrides decodes overrides.yaml; each tenant's entry starts from the
// defaults, so it names only the keys it changes.
func parseOverrides(data []byte, defaults Limits) (map[string]*Limits, error) {
	var file struct {
		Overrides map[string]yaml.Node `yaml:"overrides"`
	}
	if err := decodeStrict(data, &file); err != nil {
		return nil, err
	}
	out := make(map[string]*Limits, len(file.Overrides))
	for tenant, node := range file.Overrides {
		raw, err := yaml.Marshal(&node)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		l := defaults
		if err := decodeStrict(raw, &l); err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		out[tenant] = &l
	}
	return out, nil
}

// Run reloads the overrides file every period until ctx ends.
func (t *TenantLimits) Run(ctx context.Context) {
	if t.rc.File == "" || t.rc.Period <= 0 {
		return
	}
	tick := time.NewTicker(t.rc.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			changed, err := t.Reload()
			switch {
			case err != nil:
				_ = level.Error(t.logger).Log("msg", "keeping the previous tenant overrides", "err", err)
			case changed:
				_ = level.Info(t.logger).Log("msg", "tenant overrides reloaded", "file", t.rc.File)
			}
		}
	}
}
