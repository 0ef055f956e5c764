package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// node serializes a trie or tree node and its subtree depth first, as both
// formats lay them out: varint(len) name varint(value) varint(children).
type node struct {
	name     string
	value    uint64
	children []node
}

func (n node) bytes() []byte {
	var out []byte
	var walk func(node)
	walk = func(n node) {
		out = binary.AppendUvarint(out, uint64(len(n.name)))
		out = append(out, n.name...)
		out = binary.AppendUvarint(out, n.value)
		out = binary.AppendUvarint(out, uint64(len(n.children)))
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return out
}

func nd(name string, value uint64, children ...node) node { return node{name, value, children} }

// agentTrie is a trie as an old Pyroscope agent sends it: names are the
// longest prefixes keys share, so they cut frames anywhere.
var agentTrie = nd("", 0,
	nd("main;net/http.(*conn).serve;", 0,
		nd("handler.Serve", 2,
			nd(";db.Query", 30),
			nd(";json.Marshal", 12)),
		nd("runtime.mallocgc", 7)),
	nd("main;runtime.gcBgMarkWorker;runtime.gcDrain", 1)).bytes()

var agentTree = nd("", 0,
	nd("java.lang.Thread.run", 0,
		nd("com.example.Worker.loop", 5,
			nd("com.example.Codec.decode", 40),
			nd("com.example.Codec.encode", 25)),
		nd("Task.run", 11))).bytes()

const (
	ssFrames  = `{"$schema":"https://www.speedscope.app/file-format-schema.json","exporter":"py-spy@0.3.14","shared":{"frames":[{"name":"<module>","file":"app.py","line":1},{"name":"serve","file":"app.py","line":10},{"name":"handle","file":"app.py","line":20},{"name":"query","file":"db.py","line":5}]},`
	ssEvented = ssFrames + `"profiles":[{"type":"evented","name":"MainThread","unit":"milliseconds","startValue":0,"endValue":9,"events":[
		{"type":"O","frame":0,"at":0},{"type":"O","frame":1,"at":0},{"type":"O","frame":2,"at":1},{"type":"O","frame":3,"at":2},
		{"type":"C","frame":3,"at":6},{"type":"C","frame":2,"at":7},{"type":"C","frame":1,"at":9},{"type":"C","frame":0,"at":9}]}]}`
	ssSampled = ssFrames + `"profiles":[
		{"type":"sampled","name":"MainThread","unit":"seconds","startValue":0,"endValue":3,"samples":[[0,1,2,3],[0,1,2],[0,1,2,3]],"weights":[1,2,0.5]},
		{"type":"sampled","name":"Worker","unit":"seconds","startValue":1,"endValue":3,"samples":[[0,3]],"weights":[2]}]}`
)

// TestIngestTrieTreeSpeedscope sends each format as its clients do, through
// the real server, and checks what reaches the pipeline.
func TestIngestTrieTreeSpeedscope(t *testing.T) {
	ts := startServer(t, nil)
	agent := "&from=1700000000&until=1700000010&sampleRate=100&spyName=pyspy&units=samples&aggregationType=sum"
	type profile struct {
		labels     string
		sampleType string
		samples    []string
	}
	cases := []struct {
		name, query, contentType string
		body                     []byte
		want                     []profile
	}{
		{
			name: "trie by content type", query: "name=app.cpu{env=prod}" + agent, contentType: "binary/octet-stream+trie", body: agentTrie,
			want: []profile{{"__delta__=false,__name__=process_cpu,env=prod,pyroscope_spy=pyspy,service_name=app", "cpu/nanoseconds", []string{
				"main;net/http.(*conn).serve;handler.Serve => [20000000]",
				"main;net/http.(*conn).serve;handler.Serve;db.Query => [300000000]",
				"main;net/http.(*conn).serve;handler.Serve;json.Marshal => [120000000]",
				"main;net/http.(*conn).serve;runtime.mallocgc => [70000000]",
				"main;runtime.gcBgMarkWorker;runtime.gcDrain => [10000000]",
			}}},
		},
		{
			name: "trie by format", query: "name=app.alloc_space&format=trie", contentType: "application/octet-stream",
			body: nd("", 0, nd("main;alloc", 4096)).bytes(),
			want: []profile{{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=app", "alloc_space/bytes", []string{"main;alloc => [4096]"}}},
		},
		{
			name: "tree by format", query: "name=java-app.itimer&format=tree" + agent, body: agentTree,
			want: []profile{{"__delta__=false,__name__=process_cpu,pyroscope_spy=pyspy,service_name=java-app", "cpu/nanoseconds", []string{
				"java.lang.Thread.run;Task.run => [110000000]",
				"java.lang.Thread.run;com.example.Worker.loop => [50000000]",
				"java.lang.Thread.run;com.example.Worker.loop;com.example.Codec.decode => [400000000]",
				"java.lang.Thread.run;com.example.Worker.loop;com.example.Codec.encode => [250000000]",
			}}},
		},
		{
			name: "tree by content type", query: "name=app.wall&sampleRate=1000", contentType: "binary/octet-stream+tree",
			body: nd("", 0, nd("main", 3)).bytes(),
			want: []profile{{"__delta__=false,__name__=wall,pyroscope_spy=unknown,service_name=app", "wall/nanoseconds", []string{"main => [3000000]"}}},
		},
		{
			// milliseconds at the default rate: rate 100000, period 10 µs;
			// a close adds its time x 100, an open the time before it.
			name: "speedscope evented", query: "name=py-app&format=speedscope&spyName=pyspy", contentType: "application/json", body: []byte(ssEvented),
			want: []profile{{"__delta__=false,__name__=process_cpu,profile_name=MainThread,pyroscope_spy=pyspy,service_name=py-app", "cpu/nanoseconds", []string{
				"<module>;serve => [2010000]",
				"<module>;serve;handle => [1010000]",
				"<module>;serve;handle;query => [4000000]",
			}}},
		},
		{
			// Two profiles: each is its own push, named app.seconds (wall).
			name: "speedscope sampled", query: "name=py-app{env=prod}&format=speedscope", contentType: "application/json", body: []byte(ssSampled),
			want: []profile{
				{"__delta__=false,__name__=wall,env=prod,profile_name=MainThread,pyroscope_spy=unknown,service_name=py-app", "wall/nanoseconds", []string{
					"<module>;serve;handle => [2000000000]",
					"<module>;serve;handle;query => [1000000000]",
				}},
				{"__delta__=false,__name__=wall,env=prod,profile_name=Worker,pyroscope_spy=unknown,service_name=py-app", "wall/nanoseconds", []string{
					"<module>;query => [2000000000]",
				}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.pusher.count()
			resp := post(t, ts.url+"/ingest?"+tc.query, tc.contentType, tc.body, nil)
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			ts.pusher.mu.Lock()
			reqs := slices.Clone(ts.pusher.reqs[before:])
			ts.pusher.mu.Unlock()
			if len(reqs) != len(tc.want) {
				t.Fatalf("%d pushes, want %d", len(reqs), len(tc.want))
			}
			for i, req := range reqs {
				series := req.Series[0]
				p := pprofcheck.Parse(t, series.Samples[0].RawProfile)
				got := profile{strings.Join(labelStrings(series.Labels), ","), p.SampleType[0].Type + "/" + p.SampleType[0].Unit, stacks(p)}
				if got.labels != tc.want[i].labels || got.sampleType != tc.want[i].sampleType || !slices.Equal(got.samples, tc.want[i].samples) {
					t.Errorf("push %d\n got %+v\nwant %+v", i, got, tc.want[i])
				}
				if i == 0 && strings.Contains(tc.query, "from=1700000000") && p.TimeNanos != 1700000000e9 {
					t.Errorf("time %d, want from", p.TimeNanos)
				}
			}
		})
	}
}

// TestIngestFormatStatusCodes: Pyroscope's answers for these formats. Tree
// and trie answer as folded does (a body that does not decode 422, a wrong
// profile type or a profile the pipeline refuses 400); speedscope's errors
// are not ingestion errors in Pyroscope, so all are 422 but limits (429).
func TestIngestFormatStatusCodes(t *testing.T) {
	badUTF8 := nd("", 0, nd("main\xff", 1)).bytes()
	long := nd("", 0, nd(strings.Repeat("f", 70000), 1)).bytes()
	noneSecond := ssFrames + `"profiles":[{"type":"sampled","name":"a","unit":"seconds","samples":[[0]],"weights":[1]},
		{"type":"sampled","name":"b","unit":"none","startValue":1,"samples":[[0]],"weights":[1]}]}`
	cases := []struct {
		name, query, contentType string
		body                     []byte
		pushErr                  error
		budget                   int64
		wantStatus               int
		wantPushes               int
		wantMsg                  string
	}{
		{name: "trie ends inside a node", query: "name=a.cpu&format=trie", body: agentTrie[:len(agentTrie)-1], wantStatus: 422, wantMsg: "parsing trie body: EOF"},
		{name: "empty trie", query: "name=a.cpu&format=trie", body: nil, wantStatus: 200, wantPushes: 1},
		{name: "empty tree", query: "name=a.cpu&format=tree", body: nil, wantStatus: 422, wantMsg: "parsing tree body: EOF"},
		{name: "tree unknown profile type", query: "name=a.nope&format=tree", body: agentTree, wantStatus: 400, wantMsg: "unknown profile type: nope"},
		{name: "tree frame not UTF-8", query: "name=a.cpu&format=tree", body: badUTF8, wantStatus: 400, wantMsg: "invalid UTF-8"},
		{name: "tree name over the symbol limit", query: "name=a.cpu&format=tree", body: long, wantStatus: 422, wantMsg: "tree node name length 70000 exceeds maximum 65535"},
		{name: "trie over max profile size", query: "name=a.cpu&format=trie", body: nd("", 0, nd(strings.Repeat("f", 5<<20), 1)).bytes(), wantStatus: 400, wantMsg: "exceeds limit"},
		{name: "tree with profile_id", query: "name=a.cpu{profile_id=7}&format=tree", body: agentTree, wantStatus: 200},
		{name: "tree push refused", query: "name=a.cpu&format=tree", body: agentTree, pushErr: connect.NewError(connect.CodeInvalidArgument, errors.New("no")), wantStatus: 400, wantPushes: 1},
		{name: "trie push rate limited", query: "name=a.cpu&format=trie", body: agentTrie, pushErr: connect.NewError(connect.CodeResourceExhausted, errors.New("slow down")), wantStatus: 429, wantPushes: 1},
		{name: "tree writers down", query: "name=a.cpu&format=tree", body: agentTree, pushErr: status.Error(codes.Unavailable, "down"), wantStatus: 503, wantPushes: 1},
		{name: "tree over the budget", query: "name=a.cpu&format=tree", body: agentTree, budget: 2 << 10, wantStatus: 429},
		{name: "speedscope not JSON", query: "name=a&format=speedscope", body: []byte("{"), wantStatus: 422, wantMsg: "parsing speedscope body"},
		{name: "speedscope wrong schema", query: "name=a&format=speedscope", body: []byte(`{"$schema":"x"}`), wantStatus: 422, wantMsg: "unknown schema: x"},
		{name: "speedscope frame past the table", query: "name=a&format=speedscope", body: []byte(ssFrames + `"profiles":[{"type":"sampled","unit":"none","samples":[[4]],"weights":[1]}]}`), wantStatus: 422, wantMsg: "invalid frame 4"},
		{name: "speedscope unknown type after a push", query: "name=a&format=speedscope", body: []byte(noneSecond), wantStatus: 422, wantPushes: 1, wantMsg: "unknown profile type: none"},
		{name: "speedscope unknown profile type", query: "name=a.nope&format=speedscope", body: []byte(ssEvented), wantStatus: 422},
		{name: "speedscope push refused", query: "name=a&format=speedscope", body: []byte(ssSampled), pushErr: connect.NewError(connect.CodeInvalidArgument, errors.New("no")), wantStatus: 422, wantPushes: 1},
		{name: "speedscope push rate limited", query: "name=a&format=speedscope", body: []byte(ssSampled), pushErr: connect.NewError(connect.CodeResourceExhausted, errors.New("slow down")), wantStatus: 429, wantPushes: 1},
		{name: "speedscope writers down", query: "name=a&format=speedscope", body: []byte(ssSampled), pushErr: status.Error(codes.Unavailable, "down"), wantStatus: 503, wantPushes: 1},
		{name: "speedscope over the budget", query: "name=a&format=speedscope", body: []byte(ssSampled), budget: 2 << 10, wantStatus: 429},
		{name: "speedscope with profile_id", query: "name=a{profile_id=7}&format=speedscope", body: []byte(ssSampled), wantStatus: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(o *Options) {
				o.Limits = defaultsOnly{config.Defaults().Limits}
				if tc.budget > 0 {
					o.Budget = inflight.New(tc.budget)
				}
			})
			ts.pusher.setErr(tc.pushErr)
			resp := post(t, ts.url+"/ingest?"+tc.query, tc.contentType, tc.body, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if n := ts.pusher.count(); n != tc.wantPushes {
				t.Errorf("%d pushes, want %d", n, tc.wantPushes)
			}
			if tc.wantStatus != 200 {
				var eb errorBody
				if err := json.Unmarshal(body, &eb); err != nil || !strings.Contains(eb.Message, tc.wantMsg) {
					t.Errorf("body %s (%v), want a message with %q", body, err, tc.wantMsg)
				}
			}
		})
	}
}

// TestIngestFormatsThroughPipeline: each format through the real pipeline
// (validation, normalization) reaches the sender whole.
func TestIngestFormatsThroughPipeline(t *testing.T) {
	sender := &recordingSender{}
	d, err := distributor.New(distributor.Config{}, defaultsOnly{config.Defaults().Limits}, sender,
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.Pusher = d })
	for _, tc := range []struct {
		query   string
		body    []byte
		samples int
	}{
		{"name=app.cpu&format=trie", agentTrie, 5},
		{"name=app.cpu&format=tree", agentTree, 4},
		{"name=app&format=speedscope", []byte(ssSampled), 3},
	} {
		before := len(sender.out)
		resp := post(t, ts.url+"/ingest?"+tc.query, "", tc.body, nil)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s: status %d: %s", tc.query, resp.StatusCode, b)
		}
		n := 0
		for _, p := range sender.out[before:] {
			n += len(pprofcheck.Parse(t, p.Pprof).Sample)
		}
		if n != tc.samples {
			t.Errorf("%s: %d samples reached the sender, want %d", tc.query, n, tc.samples)
		}
	}
}
