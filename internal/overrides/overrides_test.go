package overrides

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pyrodist/pyrodist/internal/config"
)

// writeFile replaces the file at once (write, then rename), as a mounted
// ConfigMap changes: a reload must never see a half-written file, which
// reads as another, valid, file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, o *Overrides) error {
	t.Helper()
	err := services.StartAndAwaitRunning(context.Background(), o)
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), o) })
	return err
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	defaults := config.Defaults().Limits
	writeFile(t, path, `
overrides:
  team-a:
    ingestion_rate_mb: 20
    max_label_names_per_series: 40
`)
	o := New(defaults, config.RuntimeConfig{File: path, Period: time.Hour}, nil, nil)
	if err := start(t, o); err != nil {
		t.Fatal(err)
	}
	a := o.ForTenant("team-a")
	if a.IngestionRateMB != 20 || a.MaxLabelNamesPerSeries != 40 || a.IngestionBurstSizeMB != defaults.IngestionBurstSizeMB {
		t.Fatalf("team-a: %+v", a)
	}
	if b := o.ForTenant("team-b"); b.IngestionRateMB != defaults.IngestionRateMB {
		t.Fatalf("team-b got %v, want the default", b.IngestionRateMB)
	}
	if changed, err := o.Reload(); changed || err != nil {
		t.Fatalf("unchanged file: changed=%v err=%v", changed, err)
	}

	writeFile(t, path, "overrides:\n  team-b:\n    ingestion_rate_mb: 1\n")
	if changed, err := o.Reload(); !changed || err != nil {
		t.Fatalf("changed file: changed=%v err=%v", changed, err)
	}
	if o.ForTenant("team-b").IngestionRateMB != 1 || o.ForTenant("team-a").IngestionRateMB != defaults.IngestionRateMB {
		t.Fatal("reload not applied")
	}
	if a.IngestionRateMB != 20 {
		t.Fatal("a reload changed limits a caller already holds")
	}

	for _, bad := range []string{
		"overrides: [\n",
		"overrides:\n  team-b:\n    ingestion_rate_mb: fast\n",
		"overrides:\n  team-b:\n    ingestion_relabeling_rules: [{action: explode}]\n",
		"overrides:\n  team-b:\n    ingestion_relabeling_rules: [{action: drop, regex: \"(\"}]\n",
		"overrides:\n  team-b:\n    ingestion_relabeling_default_rules_position: end\n",
		"overrides:\n  team-b:\n    sample_type_relabeling_rules: [{action: replace, target_label: a}]\n",
		"overrides:\n  team-b: 5\n",
	} {
		writeFile(t, path, bad)
		if _, err := o.Reload(); err == nil {
			t.Fatalf("bad file %q accepted", bad)
		}
		if o.ForTenant("team-b").IngestionRateMB != 1 {
			t.Fatal("a bad file replaced the previous overrides")
		}
	}
}

func TestStart(t *testing.T) {
	dir := t.TempDir()
	defaults := config.Defaults().Limits
	missing := New(defaults, config.RuntimeConfig{File: filepath.Join(dir, "missing.yaml")}, nil, nil)
	if err := start(t, missing); err == nil || !strings.Contains(err.Error(), "reading overrides file") {
		t.Fatalf("missing overrides file at start: %v", err)
	}
	none := New(defaults, config.RuntimeConfig{}, nil, nil)
	if err := start(t, none); err != nil || none.ForTenant("x").IngestionRateMB != defaults.IngestionRateMB {
		t.Fatalf("no overrides file: %v", err)
	}
}

func TestRunningPicksUpChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, path, "overrides: {}\n")
	o := New(config.Defaults().Limits, config.RuntimeConfig{File: path, Period: 5 * time.Millisecond}, nil, nil)
	if err := start(t, o); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "overrides:\n  t:\n    ingestion_burst_size_mb: 9\n")
	for i := 0; i < 1000 && o.ForTenant("t").IngestionBurstSizeMB != 9; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if got := o.ForTenant("t").IngestionBurstSizeMB; got != 9 {
		t.Fatalf("the running service did not apply the new file: burst %v", got)
	}
	// A bad file while running is logged and skipped; the service stays up.
	writeFile(t, path, "overrides: [\n")
	time.Sleep(50 * time.Millisecond)
	if o.State() != services.Running || o.ForTenant("t").IngestionBurstSizeMB != 9 {
		t.Fatalf("after a bad file: state %v, burst %v", o.State(), o.ForTenant("t").IngestionBurstSizeMB)
	}
}

// A Pyroscope overrides file loads as it is: other components' keys are
// accepted and named once, a typo is a warning and a counted metric, and
// neither stops the tenant's other keys from applying.
func TestForeignAndUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	file := `
multi_kv_config: {primary: consul}
overrides:
  team-a:
    ingestion_rate_mb: 20
    compactor_blocks_retention_period: 30d
    max_query_lookback: 7d
    enforce_labels_order: true
    ingestion_rate_mbb: 2
  team-b:
  team-c:
    write_path: segment-writer
    max_label_names_per_series: 12
`
	writeFile(t, path, file)
	var logs bytes.Buffer
	reg := prometheus.NewPedanticRegistry()
	o := New(config.Defaults().Limits, config.RuntimeConfig{File: path, Period: time.Hour}, log.NewLogfmtLogger(&logs), reg)
	if err := start(t, o); err != nil {
		t.Fatal(err)
	}
	if a := o.ForTenant("team-a"); a.IngestionRateMB != 20 {
		t.Errorf("team-a rate %v, want 20", a.IngestionRateMB)
	}
	if c := o.ForTenant("team-c"); c.MaxLabelNamesPerSeries != 12 {
		t.Errorf("team-c max labels %v, want 12", c.MaxLabelNamesPerSeries)
	}
	if b := o.ForTenant("team-b"); b.IngestionRateMB != config.Defaults().Limits.IngestionRateMB {
		t.Errorf("an empty entry should be the defaults: %+v", b)
	}
	out := logs.String()
	for _, want := range []string{
		`level=warn msg="ignoring unknown overrides key (neither pyrodist nor Pyroscope has it)" file=` + path + ` tenant=team-a key=ingestion_rate_mbb`,
		`level=warn msg="ignoring unknown top-level key of the overrides file" file=` + path + ` key=multi_kv_config`,
		`keys=compactor_blocks_retention_period,enforce_labels_order,max_query_lookback,write_path`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	var m dto.Metric
	if err := o.unknown.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 2 {
		t.Errorf("unknown keys counted %v, want 2", got)
	}

	// The same accepted keys in a changed file: no second info line.
	logs.Reset()
	writeFile(t, path, strings.Replace(file, "ingestion_rate_mb: 20", "ingestion_rate_mb: 21", 1))
	if changed, err := o.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if strings.Contains(logs.String(), "accepted for other") {
		t.Errorf("accepted keys logged again for the same set:\n%s", logs.String())
	}
	// Another set: logged again.
	writeFile(t, path, "overrides:\n  team-a:\n    max_query_length: 1h\n")
	if _, err := o.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "keys=max_query_length") {
		t.Errorf("a new set of accepted keys was not logged:\n%s", logs.String())
	}
}

// Pyroscope's documented rule examples load as they are, with the rules
// they describe.
func TestPyroscopeDocsFile(t *testing.T) {
	data, err := os.ReadFile("testdata/pyroscope-docs-overrides.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tenants, keys, err := Parse(data, config.Defaults().Limits)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Unknown) != 0 || len(keys.NotOurs) != 0 {
		t.Errorf("keys not acted on: %+v", keys)
	}
	ing := tenants["docs-ingestion"].IngestionRelabelingRules
	st := tenants["docs-sample-types"].SampleTypeRelabelingRules
	ebpf := tenants["docs-ebpf"].IngestionRelabelingRules
	if len(ing) != 2 || ing[0].Action != "drop" || ing[1].TargetLabel != "powered_by" || len(st) != 3 || st[2].Separator != ";" || len(ebpf) != 1 {
		t.Fatalf("rules: %+v %+v %+v", ing, st, ebpf)
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for _, r := range st {
			if !yield(string(r.Action)) {
				return
			}
		}
	}); !slices.Equal(got, []string{"drop", "keep", "drop"}) {
		t.Errorf("sample type actions %v", got)
	}
}
