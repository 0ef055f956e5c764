package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyrodist/pyrodist/test/testutil/logtail"
	"github.com/pyrodist/pyrodist/test/testutil/poll"
)

// Process is one program started by the harness. Its PID is recorded in
// <dir>/pids/<order>-<name>.pid so that a later run (demo down) can stop it.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	pidPath string
	exited  chan struct{}
}

// Exited is closed when the process has exited (only for processes this
// program started and waits on).
func (p *Process) Exited() <-chan struct{} { return p.exited }

// LogTail returns the last n lines of the process's log, for error messages.
func (p *Process) LogTail(n int) string { return logtail.Lines(p.LogPath, n) }

// StartProcess starts a program with its output in <dir>/logs/<name>.log.
// Detached processes run in their own session and outlive this program (the
// demo); others are killed by the kernel if this program dies (tests).
func (c *Cluster) StartProcess(name string, env []string, bin string, args ...string) (*Process, error) {
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), env...)
	if c.detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.seq++
	p := &Process{
		Name:    name,
		Cmd:     cmd,
		LogPath: logPath,
		pidPath: filepath.Join(c.Dir, "pids", fmt.Sprintf("%03d-%s.pid", c.seq, name)),
		exited:  make(chan struct{}),
	}
	if err := os.WriteFile(p.pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	c.procs = append(c.procs, p)
	c.logf("started %s (pid %d)", name, cmd.Process.Pid)
	return p, nil
}

// StopPIDs stops every process recorded under dir/pids, newest first: SIGTERM,
// then SIGKILL after grace. Only the recorded PIDs are signalled. It returns the
// names of the processes it stopped.
func StopPIDs(dir string, grace time.Duration) ([]string, error) {
	pidDir := filepath.Join(dir, "pids")
	entries, err := os.ReadDir(pidDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pid") {
			names = append(names, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	var stopped []string
	var errs []error
	for _, n := range names {
		path := filepath.Join(pidDir, n)
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			errs = append(errs, fmt.Errorf("bad pid file %s", path))
			continue
		}
		if stopPID(pid, grace) {
			stopped = append(stopped, strings.TrimSuffix(n[strings.Index(n, "-")+1:], ".pid"))
		}
		_ = os.Remove(path)
	}
	return stopped, errors.Join(errs...)
}

// stopPID sends SIGTERM and waits up to grace before SIGKILL. It reports
// whether the process was alive.
func stopPID(pid int, grace time.Duration) bool {
	p, err := os.FindProcess(pid)
	if err != nil || p.Signal(syscall.Signal(0)) != nil {
		return false
	}
	_ = p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.Signal(syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports (all held open until all are chosen).
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// errExited ends waitFor's polling: the process it waits on is gone.
var errExited = errors.New("process exited")

// waitFor polls check until it succeeds, the process dies, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, p *Process, what string, check func(context.Context) error) error {
	err := poll.Until(ctx, timeout, 3*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		err := check(ctx)
		if err == nil || p == nil {
			return err
		}
		select {
		case <-p.exited:
			return poll.Stop(errExited)
		default:
			return err
		}
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errExited):
		return fmt.Errorf("%s exited before it was ready; log tail:\n%s", p.Name, p.LogTail(30))
	case p != nil:
		return fmt.Errorf("%s not ready: %w; log tail:\n%s", what, err, p.LogTail(30))
	}
	return fmt.Errorf("%s not ready: %w", what, err)
}
