// Package sockets lets tests break a listener under the code that owns it,
// the way a failing kernel or a stray close would: Linux only.
package sockets

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// KillListener takes the TCP socket listening on ip out of LISTEN with
// shutdown(2), without closing the descriptor its owner still holds: its
// accept calls fail from then on and new connections are refused.
func KillListener(t testing.TB, ip string) {
	t.Helper()
	if err := syscall.Shutdown(ListeningFD(t, ip), syscall.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
}

// ListeningFD finds this process's descriptor of the TCP socket listening
// on ip, through the kernel's socket table and /proc/self/fd.
func ListeningFD(t testing.TB, ip string) int {
	t.Helper()
	var b [4]byte
	for i, p := range strings.Split(ip, ".") {
		n, _ := strconv.Atoi(p)
		b[3-i] = byte(n)
	}
	local := fmt.Sprintf("%02X%02X%02X%02X:", b[0], b[1], b[2], b[3])
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inode := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 9 && fs[3] == "0A" && strings.HasPrefix(fs[1], local) {
			inode = fs[9]
		}
	}
	if inode == "" {
		t.Fatalf("no socket listens on %s", ip)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "socket:["+inode+"]" {
			fd, _ := strconv.Atoi(e.Name())
			return fd
		}
	}
	t.Fatalf("socket inode %s is not among this process's descriptors", inode)
	return -1
}
