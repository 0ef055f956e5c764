//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s program on its own control plane, then checks
// its routing table: every (tenant, service) reached a writer in each of the
// three zones (one distributor per zone, zone preference on) with the same shard
// in every zone, and `demo down` stops every process it recorded.
func TestDemo(t *testing.T) {
	tools(t)
	bin := t.TempDir()
	for name, pkg := range map[string]string{"operator": "./cmd/operator", "distributor": "./cmd/distributor", "fakewriter": "./test/cmd/fakewriter"} {
		goBuild(t, filepath.Join(bin, name), pkg)
	}
	demoBin := filepath.Join(bin, "demo")
	goBuild(t, demoBin, "./hack/demo")
	dir := filepath.Join(t.TempDir(), "demo")

	up := exec.Command(demoBin, "-dir", dir, "-bin", bin, "up")
	up.Dir = repoRoot
	var out bytes.Buffer
	up.Stdout, up.Stderr = &out, &out
	err := up.Run()
	t.Cleanup(func() {
		down := exec.Command(demoBin, "-dir", dir, "down")
		down.Dir = repoRoot
		if b, err := down.CombinedOutput(); err != nil {
			t.Errorf("demo down: %v\n%s", err, b)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("demo down left %s behind", dir)
		}
	})
	if err != nil {
		t.Fatalf("demo up: %v\n%s", err, out.String())
	}
	for _, want := range []string{"routing table", "zone-by-zone rollout", "rollout Complete", "ring health per zone", "pyrodist demo is running", "make demo-down", "X-Scope-OrgID"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	table, err := os.ReadFile(filepath.Join(dir, "routing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("demo routing table:\n%s", table)
	type key struct{ tenant, service string }
	zones := map[key]map[string]string{} // zone -> shard
	for i, line := range strings.Split(strings.TrimSpace(string(table)), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) != 6 {
			continue
		}
		tenant, service, zone, shard, writer := f[0], f[1], f[2], f[3], f[4]
		if !strings.Contains(writer, zone) {
			t.Errorf("row %q: writer %s is not in zone %s", line, writer, zone)
		}
		k := key{tenant, service}
		if zones[k] == nil {
			zones[k] = map[string]string{}
		}
		if prev, ok := zones[k][zone]; ok && prev != shard {
			t.Errorf("%v: zone %s got shards %s and %s", k, zone, prev, shard)
		}
		zones[k][zone] = shard
	}
	if len(zones) != 9 {
		t.Errorf("%d (tenant, service) pairs in the table, want 9", len(zones))
	}
	for k, byZone := range zones {
		if len(byZone) != 3 {
			t.Errorf("%v reached zones %v, want all three", k, byZone)
		}
		shards := map[string]bool{}
		for _, s := range byZone {
			shards[s] = true
		}
		if len(shards) != 1 {
			t.Errorf("%v: shards differ between zones %v; zone preference must not change the shard", k, byZone)
		}
	}
}

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}
