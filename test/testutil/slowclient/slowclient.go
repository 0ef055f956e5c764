// Package slowclient plays the slow-loris client: an HTTP/1.1 request that
// declares a body and sends it a byte at a time, to check that a server
// neither holds memory for the declared size nor waits forever.
package slowclient

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// Trickle sends a POST to path on addr declaring a body of declared bytes,
// then one byte every gap until the server answers, the body is sent, or
// giveUp passes. It returns the answer's status without the protocol
// ("408 Request Timeout"), or what happened instead ("connection closed",
// "no answer", "dial: ...").
func Trickle(addr, path, contentType string, declared int, gap, giveUp time.Duration) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, contentType, declared)
	answered := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil && line == "" {
			line = "connection closed"
		}
		answered <- strings.TrimPrefix(strings.TrimSpace(line), "HTTP/1.1 ")
	}()
	deadline := time.After(giveUp)
	for sent := 0; sent < declared; sent++ {
		select {
		case line := <-answered:
			return line
		case <-deadline:
			return "no answer"
		case <-time.After(gap):
		}
		if _, err := c.Write([]byte{0}); err != nil {
			break
		}
	}
	select {
	case line := <-answered:
		return line
	case <-deadline:
		return "no answer"
	}
}
