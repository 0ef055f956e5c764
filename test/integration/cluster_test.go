package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/test/testutil/logtail"
)

// proc is one child process (a fake writer or a distributor).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startProc(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("---- %s log (tail) ----\n%s", name, logtail.Lines(p.logPath, 40))
		}
	})
	return p
}

func (p *proc) signal(s syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(s)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.name, d)
	}
}

// freePort asks the kernel for a free port on ip. Another process could
// take it before ours binds; on 127.0.0.x with our own IPs that is rare.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("no free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

var httpClient = &http.Client{Timeout: 10 * time.Second}

// waitHTTP polls url until it answers 200 and ok(body) holds.
func waitHTTP(t *testing.T, p *proc, url string, d time.Duration, ok func(body string) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited while waiting for %s: %v\n%s", p.name, url, p.err, logtail.Lines(p.logPath, 30))
		}
		res, err := httpClient.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			last = fmt.Sprintf("%s: %s", res.Status, firstLine(string(b)))
			if res.StatusCode == http.StatusOK && (ok == nil || ok(string(b))) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last: %s)", url, last)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// metric returns the value of the sample of name whose label set contains
// every label in labels (e.g. `state="ACTIVE"`), summed over matches; found
// is false when no sample matched.
func metric(body, name string, labels ...string) (v float64, found bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		x, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		v += x
		found = true
	}
	return v, found
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func post(t *testing.T, url string) {
	t.Helper()
	res, err := httpClient.Post(url, "", bytes.NewReader(nil))
	if err != nil {
		// A crash request may cut the connection before the answer.
		t.Logf("POST %s: %v", url, err)
		return
	}
	res.Body.Close()
}
