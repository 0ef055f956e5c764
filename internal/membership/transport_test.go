package membership

import (
	"bufio"
	"strings"
	"testing"
)

func TestListensIn(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1ED2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0FC8 0100007F:1ED2 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0
`
	for _, tc := range []struct {
		port int
		want bool
	}{
		{7890, true},  // 0x1ED2, listening
		{4040, false}, // 0x0FC8 appears only as a connected socket's local port
		{8080, true},  // 0x1F90 on every address
		{9095, false},
	} {
		if got := listensIn(bufio.NewScanner(strings.NewReader(table)), tc.port); got != tc.want {
			t.Errorf("port %d: listening = %v, want %v", tc.port, got, tc.want)
		}
	}
}
