package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User and group the programs run as: distroless's "nonroot", which the
// restricted Pod Security Standard and the chart's runAsUser expect.
const nonRoot = 65532

// Binaries the image carries, at /<name>. The first two are required.
var (
	requiredBinaries = []string{"operator", "distributor"}
	optionalBinaries = []string{"fakewriter"}
)

// Entrypoint: the distributor, the program most pods of this image run. The
// operator's own Deployment sets command: [/operator].
var entrypoint = []string{"/distributor"}

type options struct {
	binDir, tag, out  string
	version, revision string
	epoch             int64
}

type summary struct {
	digest   v1.Hash
	binaries []string
}

func build(o options) (summary, error) {
	ref, err := name.ParseReference(o.tag)
	if err != nil {
		return summary{}, fmt.Errorf("tag: %w", err)
	}
	mtime := time.Unix(o.epoch, 0).UTC()
	var files []file
	var arch string
	for _, b := range append(append([]string{}, requiredBinaries...), optionalBinaries...) {
		path := filepath.Join(o.binDir, b)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) && !contains(requiredBinaries, b) {
			continue
		}
		if err != nil {
			return summary{}, fmt.Errorf("%s: %w (run `make build` first)", b, err)
		}
		a, err := staticLinuxArch(data)
		if err != nil {
			return summary{}, fmt.Errorf("%s: %w", path, err)
		}
		if arch != "" && a != arch {
			return summary{}, fmt.Errorf("%s is %s, the others %s", path, a, arch)
		}
		arch = a
		files = append(files, file{name: b, mode: 0o755, data: data})
	}
	// Name the user for tools that look it up; there is no shell or libc.
	files = append(files,
		file{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot))},
		file{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonRoot))},
	)
	layerTar, err := tarFiles(files, mtime)
	if err != nil {
		return summary{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return summary{}, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return summary{}, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	version := o.version
	if version == "" {
		version = ref.Identifier()
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "pyrodist",
		"org.opencontainers.image.description": "pyrodist operator and zone-aware Pyroscope v2 distributor",
		"org.opencontainers.image.source":      "https://github.com/pyrodist/pyrodist",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.created":     mtime.Format(time.RFC3339),
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return summary{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: mtime}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		Entrypoint:   entrypoint,
		WorkingDir:   "/",
		Labels:       labels,
		ExposedPorts: map[string]struct{}{"4040/tcp": {}, "7946/tcp": {}},
	}
	cf.History = []v1.History{{Created: v1.Time{Time: mtime}, CreatedBy: "hack/image", Comment: "static pyrodist binaries"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return summary{}, err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return summary{}, err
	}
	if err := tarball.WriteToFile(o.out, ref, img); err != nil {
		return summary{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return summary{}, err
	}
	s := summary{digest: d}
	for _, f := range files {
		if f.mode == 0o755 {
			s.binaries = append(s.binaries, "/"+f.name)
		}
	}
	return s, nil
}

type file struct {
	name string
	mode int64
	data []byte
}

// tarFiles writes a layer: parent directories first, root-owned files with a fixed time.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		if d := filepath.Dir(f.name); d != "." && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// staticLinuxArch checks that data is a statically linked Linux ELF executable
// (no base image means no dynamic loader or libc) and returns its GOARCH name.
func staticLinuxArch(data []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked; build with CGO_ENABLED=0")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	default:
		return "", fmt.Errorf("unsupported machine %v", f.Machine)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
