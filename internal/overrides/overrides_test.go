package overrides

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/services"

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
	o := New(defaults, config.RuntimeConfig{File: path, Period: time.Hour}, nil)
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

	for _, bad := range []string{"overrides:\n  team-b:\n    ingestion_rate_mbb: 2\n", "overrides: [\n", "overridez: {}\n"} {
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
	missing := New(defaults, config.RuntimeConfig{File: filepath.Join(dir, "missing.yaml")}, nil)
	if err := start(t, missing); err == nil || !strings.Contains(err.Error(), "reading overrides file") {
		t.Fatalf("missing overrides file at start: %v", err)
	}
	none := New(defaults, config.RuntimeConfig{}, nil)
	if err := start(t, none); err != nil || none.ForTenant("x").IngestionRateMB != defaults.IngestionRateMB {
		t.Fatalf("no overrides file: %v", err)
	}
}

func TestRunningPicksUpChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, path, "overrides: {}\n")
	o := New(config.Defaults().Limits, config.RuntimeConfig{File: path, Period: 5 * time.Millisecond}, nil)
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
