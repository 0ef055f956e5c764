package inflight

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestChargeReserveAndRelease(t *testing.T) {
	b := New(100)
	a, c := b.Charge(), b.Charge()
	if err := a.Reserve(60); err != nil {
		t.Fatal(err)
	}
	err := c.Reserve(41)
	if !IsExhausted(err) || !strings.Contains(err.Error(), "holding its limit of 100 B") {
		t.Fatalf("over the budget: %v", err)
	}
	if b.InUse() != 60 || c.Held() != 0 {
		t.Fatalf("a refused reservation was charged: in use %d, held %d", b.InUse(), c.Held())
	}
	if err := c.Reserve(40); err != nil {
		t.Fatal(err)
	}
	a.Release()
	a.Release() // twice is harmless
	if b.InUse() != 40 || a.Held() != 0 {
		t.Fatalf("after release: in use %d", b.InUse())
	}
	c.Release()
	if b.InUse() != 0 {
		t.Fatalf("in use %d after every charge was released", b.InUse())
	}
	// Wrapped errors are still recognised.
	if !IsExhausted(fmt.Errorf("inflate: %w", err)) || IsExhausted(errors.New("other")) {
		t.Fatal("IsExhausted")
	}
}

func TestUnlimitedAndNil(t *testing.T) {
	b := &Budget{} // unlimited
	ch := b.Charge()
	if err := ch.Reserve(1 << 40); err != nil || b.InUse() != 1<<40 {
		t.Fatalf("unlimited budget: %v, in use %d", err, b.InUse())
	}
	ch.Release()
	var none *Budget
	nc := none.Charge()
	if err := nc.Reserve(10); err != nil || nc.Held() != 0 {
		t.Fatal("a nil budget charges nothing")
	}
	nc.Release()
}

func TestConcurrentChargesNeverExceed(t *testing.T) {
	b := New(1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := b.Charge()
			for range 1000 {
				if ch.Reserve(7) == nil {
					mu.Lock()
					peak = max(peak, b.InUse())
					mu.Unlock()
				}
				if ch.Held() > 100 {
					ch.Release()
				}
			}
			ch.Release()
		}()
	}
	wg.Wait()
	if peak > 1000 || b.InUse() != 0 {
		t.Fatalf("peak %d over a budget of 1000, or %d left", peak, b.InUse())
	}
}

func TestReaderChargesWhatArrives(t *testing.T) {
	b := New(1 << 20)
	ch := b.Charge()
	body := bytes.Repeat([]byte("x"), 10_000)
	r := &Reader{R: bytes.NewReader(body), C: ch, Step: 4096, Copies: 3}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	// Three times what arrived; the steps reserved ahead and not filled
	// were given back.
	if want := int64(3 * len(body)); ch.Held() != want {
		t.Fatalf("held %d, want %d", ch.Held(), want)
	}

	// While a read blocks, at most one step is held beyond what arrived.
	pr, pw := io.Pipe()
	blocked := b.Charge()
	r = &Reader{R: pr, C: blocked, Step: 4096, Copies: 3}
	done := make(chan struct{})
	go func() { _, _ = r.Read(make([]byte, 1<<20)); close(done) }()
	for blocked.Held() == 0 {
		runtime.Gosched()
	}
	if blocked.Held() != 3*4096 {
		t.Fatalf("a blocked read holds %d, want one step (3 x 4096)", blocked.Held())
	}
	_, _ = pw.Write([]byte("abc"))
	<-done
	if blocked.Held() != 9 {
		t.Fatalf("after 3 bytes arrived: held %d, want 9", blocked.Held())
	}

	// A body larger than the budget stops at the read that does not fit.
	small := New(3 * 4096 * 2)
	sc := small.Charge()
	r = &Reader{R: bytes.NewReader(body), C: sc, Step: 4096, Copies: 3}
	got, err = io.ReadAll(r)
	if !IsExhausted(err) || len(got) >= len(body) || small.InUse() > small.Max() {
		t.Fatalf("read %d bytes, err %v, in use %d", len(got), err, small.InUse())
	}
	sc.Release()
	if small.InUse() != 0 {
		t.Fatal("release")
	}
}
