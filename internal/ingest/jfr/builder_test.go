package jfr

import (
	"encoding/binary"
	"strconv"
)

// A writer of small JFR recordings laid out as the JDK writes them (chunk
// header, events, one checkpoint, the metadata last), so that tests can
// make the inputs the scan must refuse, one field at a time.

func uvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// padded is a varint in exactly 4 bytes, as the JDK writes event sizes.
func padded(v uint64) []byte {
	return []byte{byte(v) | 0x80, byte(v>>7) | 0x80, byte(v>>14) | 0x80, byte(v >> 21)}
}

// event frames a body as an event: its size (itself included) first.
func event(typ uint64, body ...[]byte) []byte {
	b := uvarint(typ)
	for _, p := range body {
		b = append(b, p...)
	}
	return append(padded(uint64(4+len(b))), b...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func str(s string) []byte { return cat([]byte{3}, uvarint(uint64(len(s))), []byte(s)) }

type fieldDef struct {
	name  string
	class int // type id
	pool  bool
	array bool
}

type classDef struct {
	id     int
	name   string
	fields []fieldDef
}

// Type ids of the recording (0 and 1 are the metadata and checkpoint events).
const (
	idInt = 10 + iota
	idLong
	idShort
	idFloat
	idBoolean
	idString
	idFrameType
	idThreadState
	idThread
	idClass
	idMethod
	idPackage
	idSymbol
	idStackTrace
	idClassLoader
	idStackFrame
	idExecutionSample
	idActiveSetting
)

// baseClasses are the types the parser requires, with the fields it reads.
func baseClasses() []classDef {
	return []classDef{
		{idInt, "int", nil}, {idLong, "long", nil}, {idShort, "short", nil}, {idFloat, "float", nil},
		{idBoolean, "boolean", nil}, {idString, "java.lang.String", nil},
		{idFrameType, "jdk.types.FrameType", []fieldDef{{"description", idString, false, false}}},
		{idThreadState, "jdk.types.ThreadState", []fieldDef{{"name", idString, false, false}}},
		{idThread, "java.lang.Thread", []fieldDef{{"javaName", idString, false, false}}},
		{idClass, "java.lang.Class", []fieldDef{{"name", idSymbol, true, false}}},
		{idMethod, "jdk.types.Method", []fieldDef{{"type", idClass, true, false}, {"name", idSymbol, true, false}}},
		{idPackage, "jdk.types.Package", []fieldDef{{"name", idSymbol, true, false}}},
		{idSymbol, "jdk.types.Symbol", []fieldDef{{"string", idString, false, false}}},
		{idStackTrace, "jdk.types.StackTrace", []fieldDef{{"truncated", idBoolean, false, false}, {"frames", idStackFrame, false, true}}},
		{idClassLoader, "jdk.types.ClassLoader", []fieldDef{{"name", idSymbol, true, false}}},
		{idStackFrame, "jdk.types.StackFrame", []fieldDef{{"method", idMethod, true, false}, {"lineNumber", idInt, false, false}}},
		{idExecutionSample, "jdk.ExecutionSample", []fieldDef{
			{"startTime", idLong, false, false}, {"sampledThread", idThread, true, false},
			{"stackTrace", idStackTrace, true, false}, {"state", idThreadState, true, false},
			{"contextId", idLong, false, false},
		}},
		{idActiveSetting, "jdk.ActiveSetting", []fieldDef{{"name", idString, false, false}, {"value", idString, false, false}}},
	}
}

// metadata is the metadata event of classes.
func metadata(classes []classDef) []byte {
	var strs []string
	idx := map[string]int{}
	s := func(v string) []byte {
		i, ok := idx[v]
		if !ok {
			i = len(strs)
			idx[v] = i
			strs = append(strs, v)
		}
		return uvarint(uint64(i))
	}
	elem := func(name string, attrs [][2]string, children ...[]byte) []byte {
		b := cat(s(name), uvarint(uint64(len(attrs))))
		for _, a := range attrs {
			b = cat(b, s(a[0]), s(a[1]))
		}
		b = cat(b, uvarint(uint64(len(children))))
		for _, c := range children {
			b = cat(b, c)
		}
		return b
	}
	var cls [][]byte
	for _, c := range classes {
		var fs [][]byte
		for _, f := range c.fields {
			attrs := [][2]string{{"name", f.name}, {"class", strconv.Itoa(f.class)}}
			if f.pool {
				attrs = append(attrs, [2]string{"constantPool", "true"})
			}
			if f.array {
				attrs = append(attrs, [2]string{"dimension", "1"})
			}
			fs = append(fs, elem("field", attrs))
		}
		cls = append(cls, elem("class", [][2]string{{"id", strconv.Itoa(c.id)}, {"name", c.name}}, fs...))
	}
	tree := elem("root", nil, elem("metadata", nil, cls...), elem("region", nil))
	var table []byte
	for _, v := range strs {
		table = cat(table, str(v))
	}
	return event(0, uvarint(0), uvarint(0), uvarint(0), uvarint(uint64(len(strs))), table, tree)
}

// pool is one constant-pool list: its type, and its entries (id + fields).
type pool struct {
	typ     int
	entries [][]byte
}

// checkpoint is a constant-pool event; delta is the offset to the next one.
func checkpoint(delta int64, pools ...pool) []byte {
	b := cat(uvarint(0), uvarint(0), uvarint(uint64(delta)), uvarint(0), uvarint(uint64(len(pools))))
	for _, p := range pools {
		b = cat(b, uvarint(uint64(p.typ)), uvarint(uint64(len(p.entries))))
		for _, e := range p.entries {
			b = cat(b, e)
		}
	}
	return event(1, b)
}

// chunk lays out a chunk: header, events, checkpoint, metadata.
func chunk(events, cp, meta []byte) []byte {
	size := 68 + len(events) + len(cp) + len(meta)
	h := make([]byte, 68)
	binary.BigEndian.PutUint32(h[0:], chunkMagic)
	binary.BigEndian.PutUint32(h[4:], 0x20000)
	binary.BigEndian.PutUint64(h[8:], uint64(size))
	binary.BigEndian.PutUint64(h[16:], uint64(68+len(events)))
	binary.BigEndian.PutUint64(h[24:], uint64(68+len(events)+len(cp)))
	binary.BigEndian.PutUint64(h[40:], 1e9)
	binary.BigEndian.PutUint64(h[56:], 1e9)
	return cat(h, events, cp, meta)
}

// recording is a valid recording: nFrames frames of distinct methods in one
// stack, sampled nEvents times (each with its own contextId when distinct).
func recording(nFrames, nEvents int, distinct bool) []byte {
	symbols := pool{typ: idSymbol, entries: [][]byte{cat(uvarint(1), str("com/example/Main")), cat(uvarint(2), str("work"))}}
	classes := pool{typ: idClass, entries: [][]byte{cat(uvarint(1), uvarint(1))}}
	methods := pool{typ: idMethod}
	frames := cat([]byte{0}, uvarint(uint64(nFrames)))
	for i := range nFrames {
		methods.entries = append(methods.entries, cat(uvarint(uint64(i+1)), uvarint(1), uvarint(2)))
		frames = cat(frames, uvarint(uint64(i+1)), uvarint(uint64(i)))
	}
	stacks := pool{typ: idStackTrace, entries: [][]byte{cat(uvarint(1), frames)}}
	states := pool{typ: idThreadState, entries: [][]byte{cat(uvarint(1), str("STATE_RUNNABLE"))}}
	threads := pool{typ: idThread, entries: [][]byte{cat(uvarint(1), str("main"))}}
	cp := checkpoint(0, symbols, classes, methods, stacks, states, threads)
	evs := event(idActiveSetting, str("event"), str("cpu"))
	for i := range nEvents {
		ctx := uint64(0)
		if distinct {
			ctx = uint64(i + 1)
		}
		evs = cat(evs, event(idExecutionSample, uvarint(1), uvarint(1), uvarint(1), uvarint(1), uvarint(ctx)))
	}
	return chunk(evs, cp, metadata(baseClasses()))
}

// unboundFrames is a recording whose stack-trace class holds its frames in
// a field not named "frames": the parser allocates them through a pointer it
// never set, and panics.
func unboundFrames() []byte {
	classes := baseClasses()
	for i := range classes {
		if classes[i].id == idStackTrace {
			classes[i].fields = []fieldDef{{"frames2", idStackFrame, false, true}}
		}
	}
	frames := cat(uvarint(1), uvarint(1), uvarint(1), uvarint(3)) // one stack, one frame
	return chunk(nil, checkpoint(0, pool{idStackTrace, [][]byte{frames}}), metadata(classes))
}
