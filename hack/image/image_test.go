package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// staticProgram compiles a tiny static Go program: the real binaries are too
// slow to build here, and what the image checks (static ELF) is the same.
func staticProgram(t *testing.T, dir, name string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\""+name+"\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

func TestBuildImage(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"operator", "distributor", "fakewriter"} {
		staticProgram(t, bin, b)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	tag := "registry.example/pyrodist:1.2.3"
	s0, err := build(options{binDir: bin, tag: tag, out: out, revision: "abc123", epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &ref)
	if err != nil {
		t.Fatalf("tarball does not load: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/distributor"}) {
		t.Errorf("entrypoint = %v", cf.Config.Entrypoint)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.source":   "https://github.com/pyrodist/pyrodist",
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1 (no base image)", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	for _, b := range []string{"operator", "distributor", "fakewriter"} {
		h := got[b]
		if h == nil {
			t.Errorf("layer lacks /%s (has %v)", b, keys(got))
			continue
		}
		if h.Mode&0o111 != 0o111 || h.Uid != 0 {
			t.Errorf("/%s mode %o uid %d: want executable by all, owned by root", b, h.Mode, h.Uid)
		}
	}
	if got["etc/passwd"] == nil {
		t.Error("layer lacks /etc/passwd")
	}

	// The same inputs give the same image.
	out2 := filepath.Join(t.TempDir(), "again.tar")
	s1, err := build(options{binDir: bin, tag: tag, out: out2, revision: "abc123", epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	if s0.digest != s1.digest {
		t.Errorf("rebuild digest %s != %s: build is not reproducible", s1.digest, s0.digest)
	}
}

func TestBuildImageRejects(t *testing.T) {
	dynamic := "/bin/sh" // dynamically linked on every distribution we build on
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"missing distributor", func(t *testing.T, dir string) { staticProgram(t, dir, "operator") }},
		{"not an executable", func(t *testing.T, dir string) {
			staticProgram(t, dir, "operator")
			os.WriteFile(filepath.Join(dir, "distributor"), []byte("#!/bin/sh\n"), 0o755)
		}},
		{"dynamically linked", func(t *testing.T, dir string) {
			staticProgram(t, dir, "operator")
			b, err := os.ReadFile(dynamic)
			if err != nil {
				t.Skip(err)
			}
			os.WriteFile(filepath.Join(dir, "distributor"), b, 0o755)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			if _, err := build(options{binDir: dir, tag: "x/y:1", out: filepath.Join(t.TempDir(), "i.tar")}); err == nil {
				t.Error("build succeeded")
			}
		})
	}
}

func keys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
