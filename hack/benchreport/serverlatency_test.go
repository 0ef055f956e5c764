package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestServerHistograms(t *testing.T) {
	dir := t.TempDir()
	before := `# HELP pyroscope_request_duration_seconds x
pyroscope_request_duration_seconds_bucket{method="POST",route="push_v1_PusherService_Push",status_code="200",ws="false",le="0.005"} 10
pyroscope_request_duration_seconds_bucket{method="POST",route="push_v1_PusherService_Push",status_code="200",ws="false",le="0.01"} 10
pyroscope_request_duration_seconds_bucket{method="POST",route="push_v1_PusherService_Push",status_code="200",ws="false",le="+Inf"} 10
pyroscope_request_duration_seconds_bucket{method="POST",route="ingest",status_code="200",ws="false",le="0.005"} 500
pyroscope_request_duration_seconds_bucket{method="POST",route="ingest",status_code="200",ws="false",le="+Inf"} 500
`
	// 100 new requests: 90 <= 5 ms, 9 in (5, 10] ms, 1 above.
	after := `pyroscope_request_duration_seconds_bucket{method="POST",route="push_v1_PusherService_Push",status_code="200",ws="false",le="0.005"} 100
pyroscope_request_duration_seconds_bucket{method="POST",route="push_v1_PusherService_Push",status_code="200",ws="false",le="0.01"} 109
pyroscope_request_duration_seconds_bucket{method="POST",route="push_v1_PusherService_Push",status_code="200",ws="false",le="+Inf"} 110
pyroscope_request_duration_seconds_bucket{method="POST",route="ingest",status_code="200",ws="false",le="0.005"} 900
pyroscope_request_duration_seconds_bucket{method="POST",route="ingest",status_code="200",ws="false",le="+Inf"} 900
pyroscope_segment_writer_client_request_duration_seconds_bucket{addr="a",status_code="OK",le="0.001"} 30
pyroscope_segment_writer_client_request_duration_seconds_bucket{addr="a",status_code="OK",le="+Inf"} 40
pyroscope_segment_writer_client_request_duration_seconds_bucket{addr="b",status_code="OK",le="0.001"} 50
pyroscope_segment_writer_client_request_duration_seconds_bucket{addr="b",status_code="OK",le="+Inf"} 60
`
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	want := map[string][]string{
		requestDuration: {`route="push_v1_PusherService_Push"`, `status_code="200"`},
		writerDuration:  {`status_code="OK"`},
	}
	b, err := readHistograms(write("b", before), want)
	if err != nil {
		t.Fatal(err)
	}
	a, err := readHistograms(write("a", after), want)
	if err != nil {
		t.Fatal(err)
	}
	req := a[requestDuration].sub(b[requestDuration])
	if req.count() != 100 {
		t.Fatalf("count %v, want 100 (the ingest route must not count)", req.count())
	}
	if s := req.share(0.005); s != 0.9 {
		t.Errorf("share <= 5 ms %v, want 0.9", s)
	}
	// p50: rank 50 of the 90 in [0, 5 ms] -> 50/90 of 5 ms.
	if q, ok := req.quantile(0.5); !ok || math.Abs(q-0.005*50/90) > 1e-12 {
		t.Errorf("p50 %v %v", q, ok)
	}
	// p99: rank 99, the 9th of the 9 in (5, 10] ms -> 10 ms.
	if q, ok := req.quantile(0.99); !ok || math.Abs(q-0.01) > 1e-12 {
		t.Errorf("p99 %v %v", q, ok)
	}
	// p999 falls in +Inf: unknown.
	if _, ok := req.quantile(0.999); ok {
		t.Error("a quantile in the +Inf bucket must not be reported")
	}
	wr := a[writerDuration]
	if wr.count() != 100 || wr.share(0.001) != 0.8 {
		t.Errorf("writer histogram summed over addresses: count %v share %v", wr.count(), wr.share(0.001))
	}
}
