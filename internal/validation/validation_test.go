package validation

import (
	"errors"
	"strings"
	"testing"
	"time"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
)

func lbls(kv ...string) []*typesv1.LabelPair {
	var out []*typesv1.LabelPair
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &typesv1.LabelPair{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func limits() *config.Limits {
	c := config.Defaults()
	return &c.Limits
}

// TestValidateLabels: one row per label rule
// (docs/compatibility.md#label-validation).
func TestValidateLabels(t *testing.T) {
	tests := []struct {
		name   string
		ls     []*typesv1.LabelPair
		mod    func(*config.Limits)
		reason Reason
		msg    string
		want   string
	}{
		{name: "valid", ls: lbls("__name__", "cpu", "service_name", "a")},
		{name: "no labels", reason: MissingLabels, msg: "error at least one label pair is required per profile"},
		{name: "too many", ls: lbls("__name__", "cpu", "a", "1", "service_name", "a"), mod: func(l *config.Limits) { l.MaxLabelNamesPerSeries = 2 }, reason: MaxLabelNamesPerSeries,
			msg: `profile series '{__name__="cpu", a="1", service_name="a"}' has 3 label names; limit 2`},
		{name: "no metric name", ls: lbls("service_name", "a"), reason: InvalidLabels, msg: `invalid labels '{service_name="a"}' with error: invalid metric name`},
		{name: "no service name", ls: lbls("__name__", "cpu"), reason: MissingLabels, msg: "service name is not provided"},
		{name: "name too long", ls: lbls("__name__", "cpu", strings.Repeat("n", 1025), "x", "service_name", "a"), reason: LabelNameTooLong, msg: "has label name too long"},
		{name: "value too long", ls: lbls("__name__", "cpu", "pod", strings.Repeat("v", 2049), "service_name", "a"), reason: LabelValueTooLong, msg: "has label value too long"},
		{name: "invalid utf8 value", ls: lbls("__name__", "cpu", "pod", "\xff", "service_name", "a"), reason: InvalidLabels, msg: "invalid label value"},
		{name: "duplicate", ls: lbls("__name__", "cpu", "pod", "a", "pod", "b", "service_name", "a"), reason: DuplicateLabelNames,
			msg: `profile with labels '{__name__="cpu", pod="a", pod="b", service_name="a"}' has duplicate label name: 'pod'`},
		{name: "dots and dashes pass without sanitization", ls: lbls("__name__", "cpu", "bad-name", "x", "k8s.pod", "p", "service_name", "a"),
			want: `{__name__="cpu", bad-name="x", k8s.pod="p", service_name="a"}`},
		{name: "sanitization rewrites dots", ls: lbls("__name__", "cpu", "k8s.pod", "p", "service_name", "a"), mod: func(l *config.Limits) { l.DisableLabelSanitization = false },
			want: `{__name__="cpu", k8s_pod="p", service_name="a"}`},
		{name: "sanitization rejects dashes", ls: lbls("__name__", "cpu", "bad-name", "x", "service_name", "a"), mod: func(l *config.Limits) { l.DisableLabelSanitization = false },
			reason: InvalidLabels, msg: "invalid label name 'bad-name'"},
		{name: "sanitization collision", ls: lbls("__name__", "cpu", "a.b", "1", "a_b", "2", "service_name", "a"), mod: func(l *config.Limits) { l.DisableLabelSanitization = false },
			reason: DuplicateLabelNames, msg: "has duplicate label name: 'a_b'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limits()
			if tt.mod != nil {
				tt.mod(l)
			}
			got, err := ValidateLabels(l, tt.ls)
			if tt.reason != "" {
				var ve *Error
				if !errors.As(err, &ve) || ve.Reason != tt.reason || !strings.Contains(ve.Msg, tt.msg) {
					t.Fatalf("err %v, want %s containing %q", err, tt.reason, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && LabelsString(got) != tt.want {
				t.Errorf("labels %s, want %s", LabelsString(got), tt.want)
			}
		})
	}
}

// TestRelabelDefaults: defaultRelabelRules in pkg/validation/relabeling.go
// at 3fe6a45, five replace rules run in order on the whole label set.
func TestRelabelDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   []*typesv1.LabelPair
		want string
	}{
		{"godeltaprof", lbls("__name__", "godeltaprof_memory", "service_name", "s"),
			`{__delta__="false", __name__="memory", __name_replaced__="godeltaprof_memory", service_name="s"}`},
		{"godeltaprof overrides client values", lbls("__delta__", "true", "__name__", "godeltaprof_mutex", "__name_replaced__", "x", "service_name", "s"),
			`{__delta__="false", __name__="mutex", __name_replaced__="godeltaprof_mutex", service_name="s"}`},
		{"empty suffix deletes __name__", lbls("__name__", "godeltaprof_", "service_name", "s"),
			`{__delta__="false", __name_replaced__="godeltaprof_", service_name="s"}`},
		{"prefix match spans a newline", lbls("__name__", "godeltaprof_a\nb"),
			`{__delta__="false", __name__="a\nb", __name_replaced__="godeltaprof_a\nb"}`},
		{"client __name_replaced__ alone sets __delta__", lbls("__name__", "cpu", "__name_replaced__", "godeltaprof_cpu"),
			`{__delta__="false", __name__="cpu", __name_replaced__="godeltaprof_cpu"}`},
		{"wall/cpu", lbls("__name__", "wall", "__type__", "cpu", "service_name", "s"),
			`{__name__="process_cpu", __name_replaced__="wall", __type__="cpu", service_name="s"}`},
		{"wall/cpu replaces a client __name_replaced__", lbls("__name__", "wall", "__name_replaced__", "x", "__type__", "cpu"),
			`{__name__="process_cpu", __name_replaced__="wall", __type__="cpu"}`},
		{"godeltaprof_wall then wall/cpu", lbls("__name__", "godeltaprof_wall", "__type__", "cpu"),
			`{__delta__="false", __name__="process_cpu", __name_replaced__="wall", __type__="cpu"}`},
		{"wall/wall unchanged", lbls("__name__", "wall", "__type__", "wall"), `{__name__="wall", __type__="wall"}`},
		{"wall without __type__ unchanged", lbls("__name__", "wall"), `{__name__="wall"}`},
		{"Wall/cpu is case-sensitive", lbls("__name__", "Wall", "__type__", "cpu"), `{__name__="Wall", __type__="cpu"}`},
		{"process_cpu unchanged", lbls("__name__", "process_cpu", "service_name", "s"), `{__name__="process_cpu", service_name="s"}`},
		{"prefix only at the start", lbls("__name__", "x_godeltaprof_memory"), `{__name__="x_godeltaprof_memory"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := LabelsString(tt.in)
			if got := LabelsString(RelabelDefaults(tt.in)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if LabelsString(tt.in) != before {
				t.Errorf("input modified: %s", LabelsString(tt.in))
			}
		})
	}
}

func TestServiceNameDefaultAndSort(t *testing.T) {
	got := LabelsString(WithServiceName(lbls("z", "1", "__name__", "cpu")))
	if got != `{__name__="cpu", service_name="unknown_service", z="1"}` {
		t.Errorf("got %s", got)
	}
}

// TestLimitSessions: limitMaxSessionsPerSeries in pkg/distributor/distributor.go
// and ParseSessionID/SessionID.String in pkg/model/labels.go at 3fe6a45. The
// expected values were computed outside Go: the 16 hex digits decoded as 8
// bytes, read as a little-endian signed 64-bit integer, reduced with a
// remainder that takes the dividend's sign (Go's %), written back as 8
// little-endian bytes of its two's complement, lower-case hex. For example
// "0123456789abcdef" is 0xefcdab8967452301 = -1167088121787636991; modulo 16
// that is -15 = 0xfffffffffffffff1, written "f1ffffffffffffff".
func TestLimitSessions(t *testing.T) {
	const removed = "(removed)"
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"limit 0 removes", "0123456789abcdef", 0, removed},
		{"limit 0 removes an unparsable value", "x", 0, removed},
		{"negative number, negative remainder", "0123456789abcdef", 16, "f1ffffffffffffff"},
		{"upper case parses, lower case is written", "0123456789ABCDEF", 16, "f1ffffffffffffff"},
		{"positive number", "efcdab8967452301", 16, "0f00000000000000"},               // 81985529216486895 % 16 = 15
		{"positive number, limit 1000", "efcdab8967452301", 1000, "7f03000000000000"}, // % 1000 = 895 = 0x37f
		{"1 below the limit", "0100000000000000", 16, "0100000000000000"},
		{"17 modulo 16", "1100000000000000", 16, "0100000000000000"},
		{"max int64", "ffffffffffffff7f", 1000, "2703000000000000"},                                        // 9223372036854775807 % 1000 = 807 = 0x327
		{"min int64", "0000000000000080", 3, "feffffffffffffff"},                                           // -2^63 % 3 = -2
		{"minus one", "ffffffffffffffff", 10, "ffffffffffffffff"},                                          // -1 % 10 = -1
		{"limit 1", "0123456789abcdef", 1, "0000000000000000"},                                             // -x % 1 = 0
		{"negative limit takes the divisor's absolute value", "1100000000000000", -16, "0100000000000000"}, // 17 % -16 = 1
		{"15 digits removed", "0123456789abcde", 16, removed},
		{"17 digits removed", "0123456789abcdef0", 16, removed},
		{"not hex removed", "0123456789abcdeg", 16, removed},
		{"empty removed", "", 16, removed},
		{"a UUID removed", "01234567-89ab-cdef-0123-456789abcdef", 16, removed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := lbls("__name__", "cpu", "__session_id__", tt.in, "service_name", "s")
			got := LimitSessions(in, tt.max)
			want := `{__name__="cpu", __session_id__="` + tt.want + `", service_name="s"}`
			if tt.want == removed {
				want = `{__name__="cpu", service_name="s"}`
			}
			if LabelsString(got) != want {
				t.Errorf("got %s, want %s", LabelsString(got), want)
			}
			if in[1].Value != tt.in {
				t.Errorf("input modified: %q", in[1].Value)
			}
		})
	}
	noSession := lbls("__name__", "cpu", "service_name", "s")
	if got := LabelsString(LimitSessions(noSession, 16)); got != `{__name__="cpu", service_name="s"}` {
		t.Errorf("without __session_id__: %s", got)
	}
	// Only the first __session_id__ is touched, as Labels.GetLabel and Delete
	// in pkg/model/labels.go do.
	two := lbls("__session_id__", "1100000000000000", "__session_id__", "1100000000000000")
	if got := LabelsString(LimitSessions(two, 16)); got != `{__session_id__="0100000000000000", __session_id__="1100000000000000"}` {
		t.Errorf("two labels, limit 16: %s", got)
	}
	if got := LabelsString(LimitSessions(two, 0)); got != `{__session_id__="1100000000000000"}` {
		t.Errorf("two labels, limit 0: %s", got)
	}
}

func TestIngestionWindow(t *testing.T) {
	now := time.Date(2026, 11, 25, 15, 45, 48, 331e6, time.UTC)
	l := limits()
	ls := lbls("__name__", "process_cpu", "service_name", "diff-old")
	err := CheckIngestionWindow(l, time.Date(2026, 11, 23, 15, 45, 48, 290e6, time.UTC).UnixNano(), now, ls)
	want := `profile with labels '{__name__="process_cpu", service_name="diff-old"}' is outside of ingestion window (profile timestamp: 2026-11-23 15:45:48.29 +0000 UTC, the ingestion window starts at 2026-11-25 14:45:48.331 +0000 UTC and ends at 2026-11-25 15:55:48.331 +0000 UTC)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if err := CheckIngestionWindow(l, now.Add(-59*time.Minute).UnixNano(), now, ls); err != nil {
		t.Errorf("inside window: %v", err)
	}
	if err := CheckIngestionWindow(l, now.Add(11*time.Minute).UnixNano(), now, ls); err == nil {
		t.Error("11 minutes ahead accepted")
	}
}
