package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// ConfigFileFlag names the YAML config file; ExpandEnvFlag turns on
// ${VAR} expansion in it (both as in Pyroscope).
const (
	ConfigFileFlag = "config.file"
	ExpandEnvFlag  = "config.expand-env"
)

// Load builds the distributor's config the dskit way: every flag's default,
// then the YAML file named by -config.file (unknown keys are an error, except
// Pyroscope's limits keys of other components), then
// the flags given on the command line, which win. It registers the config's
// flags and -config.file on fs; callers register their own flags (log level)
// on fs before. Flags that may repeat (-memberlist.join) add to the file's list.
// A storage block that names a backend it cannot use is an error here, so
// the process stops at load rather than run without its bucket.
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
		data, err = acceptPyroscopeLimits(data)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		if err := DecodeStrict(data, c); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.Storage.Validate(); err != nil {
		return nil, err
	}
	if err := c.AdaptivePlacement.Validate(); err != nil {
		return nil, err
	}
	if err := c.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	return c, nil
}

// acceptPyroscopeLimits drops from the file's limits block the keys that
// Pyroscope's other components act on, so a limits block copied from a
// Pyroscope config loads; the rest of the file stays strict, and an unknown
// limits key is still an error here (a typo in the static config should stop
// a rollout, where one in the reloaded overrides file only warns). The data
// is re-encoded only when something was dropped, so errors keep their lines.
func acceptPyroscopeLimits(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return data, nil // decoding reports what is wrong
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "limits" {
			continue
		}
		block := top.Content[i+1]
		saved := slices.Clone(block.Content)
		notOurs, unknown := FilterLimitKeys(block)
		if len(unknown) > 0 {
			return nil, fmt.Errorf("limits: unknown key %q (neither pyrodist nor Pyroscope has it)", unknown[0])
		}
		if len(notOurs) == 0 {
			block.Content = saved
			return data, nil
		}
		return yaml.Marshal(&doc)
	}
	return data, nil
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

// DecodeStrict decodes YAML into v over what v holds; unknown keys are an error.
func DecodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
