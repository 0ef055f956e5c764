package metriclabel

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestSetAdmitsUpToItsCap(t *testing.T) {
	s := Tenants(10)
	// Unvetted values (Value) get half of the room; vetted ones (Accepted)
	// the rest, up to the cap.
	for _, step := range []struct {
		name, prefix, past string
		admit              func(string) string
	}{
		{"Value", "refused", "half the room", s.Value},
		{"Accepted", "accepted", "the cap", s.Accepted},
	} {
		for i := range 5 {
			v := fmt.Sprintf("%s-%d", step.prefix, i)
			if got := step.admit(v); got != v {
				t.Fatalf("%s(%s) = %s while there is room", step.name, v, got)
			}
		}
		if got := step.admit(step.prefix + "-5"); got != Other {
			t.Fatalf("%s past %s = %s, want %s", step.name, step.past, got, Other)
		}
	}
	// Values admitted before stay, whichever way they are asked for.
	for _, v := range []string{"refused-0", "refused-4", "accepted-0", "accepted-4", "anonymous"} {
		if s.Value(v) != v || s.Accepted(v) != v {
			t.Errorf("%s is no longer admitted", v)
		}
	}
	if s.Value("refused-5") != Other || s.Accepted("refused-5") != Other {
		t.Error("a value was admitted past the cap")
	}
}

func TestSetFoldsInvalidValues(t *testing.T) {
	tenants, names := Tenants(100), ProfileNames(100)
	for _, v := range []string{"", "a b", "a|b", "a/b", ".", "..", "x\xff", strings.Repeat("t", 151)} {
		if got := tenants.Accepted(v); got != Other {
			t.Errorf("tenant %q recorded as %q", v, got)
		}
	}
	for _, v := range []string{"", "cpu time", "x\xff", "{}", strings.Repeat("n", 65)} {
		if got := names.Accepted(v); got != Other {
			t.Errorf("profile name %q recorded as %q", v, got)
		}
	}
	for _, v := range []string{"team-a", "Team_B.prod", "(x)*'!", strings.Repeat("t", 150)} {
		if got := tenants.Accepted(v); got != v {
			t.Errorf("tenant %q recorded as %q", v, got)
		}
	}
	for _, v := range []string{"process_cpu", "memory", "alloc_in_new_tlab", "otel.cpu:ns", strings.Repeat("n", 64)} {
		if got := names.Accepted(v); got != v {
			t.Errorf("profile name %q recorded as %q", v, got)
		}
	}
}

func TestKnownValuesNeedNoRoom(t *testing.T) {
	s := ProfileNames(0)
	if s.Accepted("process_cpu") != "process_cpu" || s.Value("wall") != "wall" {
		t.Error("a known profile name is not admitted")
	}
	if s.Accepted("custom") != Other {
		t.Error("a set without room admitted a value")
	}
}

func TestSetConcurrentAdmissionsKeepTheCap(t *testing.T) {
	s := Tenants(100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				v := s.Accepted(fmt.Sprintf("t-%d-%d", g, i))
				mu.Lock()
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 101 { // 100 tenants and Other
		t.Fatalf("%d distinct values recorded, want 101", len(seen))
	}
}

func TestHTTPMethod(t *testing.T) {
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "CONNECT", "TRACE"} {
		if HTTPMethod(m) != m {
			t.Errorf("%s folded", m)
		}
	}
	for _, m := range []string{"get", "PROPFIND", "X1234", ""} {
		if HTTPMethod(m) != Other {
			t.Errorf("%q kept", m)
		}
	}
}

func BenchmarkAdmittedValue(b *testing.B) {
	s := Tenants(1000)
	s.Accepted("team-a")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.Value("team-a") != "team-a" {
				b.Fatal("not admitted")
			}
		}
	})
}
