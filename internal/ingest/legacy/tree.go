package legacy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
)

// varint reads one unsigned varint from the front of b, with the errors of
// encoding/binary.ReadUvarint (which Pyroscope's decoders use): io.EOF when
// b is empty, io.ErrUnexpectedEOF when it ends inside the varint.
func varint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n > 0:
		return v, n, nil
	case n < 0:
		return 0, 0, errors.New("varint overflows a 64-bit integer")
	case len(b) == 0:
		return 0, 0, io.EOF
	default:
		return 0, 0, io.ErrUnexpectedEOF
	}
}

// textSeries is the end of every tree, trie and speedscope conversion:
// the profile's type from its app name, then its pprof and labels.
func textSeries(s *stackSet, appName string, sampleRate uint32, md Metadata) (*Series, error) {
	app, metric, t, err := typeOf(appName, sampleRate, md)
	if err != nil {
		return nil, err
	}
	raw, err := s.build(t)
	if err != nil {
		return nil, err
	}
	return &Series{Labels: TextLabels(metric, app, md), Pprof: raw}, nil
}

// Trie converts the `trie` format (Content-Type binary/octet-stream+trie),
// the serialized prefix trie of "root;...;leaf" keys that Pyroscope's old
// agents send. The body is a sequence of nodes in depth-first order, each
// varint(len) name varint(value) varint(child count), where a node's key is
// the concatenation of the names from the root: names are fragments of the
// key, not frames. Every node with a value is one stack. It follows
// Pyroscope's streaming reader (IterateRaw in
// pkg/og/structs/transporttrie/serialize.go at 3fe6a45) byte for byte,
// including what it does with bodies no serializer writes: an empty body is
// an empty profile, a body that ends between nodes is complete, and where
// that reader would cut its key buffer below zero (and panic), this returns
// a parse error. It returns nil, nil when the name carries profile_id.
func Trie(body []byte, md Metadata, lim Limits) (*Series, error) {
	s := newStackSet(lim, len(body))
	w := newKeyWalker(s)
	type open struct {
		desc   int64 // descendants still to come, as IterateRaw counts them
		suffix int   // bytes of the key this node added
	}
	var stack []open
	copied := 0 // bytes of the key the last named node added (kept across unnamed ones)
	perr := func(err error) error { return &ParseError{"trie", err} }
	for pos := 0; ; {
		if s.err != nil {
			return nil, s.err
		}
		nameLen, n, err := varint(body[pos:])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, perr(err)
		}
		pos += n
		if nameLen != 0 {
			// A length past int64 reads nothing: so does the reader's
			// io.LimitReader; a length past the body reads what is left.
			copied = 0
			if int64(nameLen) > 0 {
				copied = int(min(nameLen, uint64(len(body)-pos)))
			}
			w.append(body[pos : pos+copied])
			pos += copied
		}
		value, n, err := varint(body[pos:])
		if err != nil {
			return nil, perr(err)
		}
		pos += n
		desc, n, err := varint(body[pos:])
		if err != nil {
			return nil, perr(err)
		}
		pos += n
		if value > 0 {
			s.add(w.node(), value)
		}
		if desc != 0 {
			stack = append(stack, open{desc: int64(desc), suffix: copied})
			s.charge(16)
			continue
		}
		// A leaf: drop its name, then every ancestor (but the first) whose
		// descendants are all read.
		if copied > len(w.key) {
			return nil, perr(fmt.Errorf("node at byte %d cuts %d bytes of a %d-byte key", pos, copied, len(w.key)))
		}
		w.truncate(len(w.key) - copied)
		i := len(stack) - 1
		if i < 0 {
			continue
		}
		stack[i].desc--
		for ; i > 0 && stack[i].desc == 0; i-- {
			if stack[i].suffix > len(w.key) {
				return nil, perr(fmt.Errorf("node at byte %d cuts %d bytes of a %d-byte key", pos, stack[i].suffix, len(w.key)))
			}
			w.truncate(len(w.key) - stack[i].suffix)
			stack = stack[:i]
			if p := len(stack) - 1; p > 0 {
				stack[p].desc--
			}
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	if hasProfileID(md.Name) {
		return nil, nil
	}
	return textSeries(s, md.Name.App, md.SampleRate, md)
}

// treeNode is one node of a decoded tree; its name is body[nameAt:nameTo].
type treeNode struct {
	parent         int32
	next           int32 // the next node in its hash bucket
	nameAt, nameTo int32
	self           uint64
	stack          uint32 // its stack node, once it has a value
	emits          bool   // Pyroscope reads a stack (and the value) from it
	hasStack       bool
}

// chargeTreeNode is what one decoded tree node takes: the node, its index
// entry and its level of the walk.
const chargeTreeNode = 160

var treeSeed = maphash.MakeSeed()

var semicolon = []byte{';'}

// Tree converts the `tree` format (Content-Type binary/octet-stream+tree):
// a call tree serialized depth-first, each node varint(len) name
// varint(self) varint(child count), where names are frames. It follows
// Pyroscope (DeserializeNoDict in pkg/og/storage/tree/serialize.go and
// ParseTreeNoDict in pkg/og/convert/parser.go at 3fe6a45): children of one
// node with the same name are one node whose self value is the last one
// read; each node's stack is the ';'-joined names from the root's with the
// first two bytes of ";root;" cut (so an unnamed root adds no frame), and a
// node whose joined label is at most 2 bytes long adds nothing. Name
// lengths and child counts over MaxNameLen and MaxChildren and a body that
// ends inside the tree are errors; bytes after the tree are ignored. It
// returns nil, nil when the name carries profile_id.
func Tree(body []byte, md Metadata, lim Limits) (*Series, error) {
	if len(body) > math.MaxInt32 {
		return nil, &ParseError{"tree", errors.New("body over 2 GiB")}
	}
	s := newStackSet(lim, len(body))
	w := newKeyWalker(s)
	hint := min(len(body)/32, 1<<20)
	nodes := make([]treeNode, 0, hint)
	buckets := make(map[uint64]int32, hint)
	s.charge(hint * chargeTreeNode)
	// A level of the walk: a node whose children are being read, how many
	// are still to come, and the key and label length at that node.
	type level struct {
		node     int32
		children uint64
		keyLen   int
		labelLen int
	}
	var stack []level
	pos := 0
	read := func() (at, to int, self, children uint64, err error) {
		nameLen, n, err := varint(body[pos:])
		if err != nil {
			return 0, 0, 0, 0, err
		}
		pos += n
		if lim.MaxNameLen > 0 && nameLen > uint64(lim.MaxNameLen) {
			return 0, 0, 0, 0, fmt.Errorf("tree node name length %d exceeds maximum %d", nameLen, lim.MaxNameLen)
		}
		if nameLen > uint64(len(body)-pos) {
			if pos == len(body) {
				return 0, 0, 0, 0, io.EOF
			}
			return 0, 0, 0, 0, io.ErrUnexpectedEOF
		}
		at, to = pos, pos+int(nameLen)
		pos = to
		if self, n, err = varint(body[pos:]); err != nil {
			return 0, 0, 0, 0, err
		}
		pos += n
		if children, n, err = varint(body[pos:]); err != nil {
			return 0, 0, 0, 0, err
		}
		pos += n
		if lim.MaxChildren > 0 && children > uint64(lim.MaxChildren) {
			return 0, 0, 0, 0, fmt.Errorf("tree node children count %d exceeds maximum %d", children, lim.MaxChildren)
		}
		return at, to, self, children, nil
	}
	// visit records a node read under parent (-1: the root), whose label is
	// the parent's + ";" + name, and descends into it.
	visit := func(parent int32, parentLabel, at, to int, self, children uint64) {
		name := body[at:to]
		h := maphash.Bytes(treeSeed, name) ^ uint64(uint32(parent))*0x9e3779b97f4a7c15
		head, found := buckets[h]
		id := int32(-1)
		if found {
			for i := head; i >= 0; i = nodes[i].next {
				if nd := &nodes[i]; nd.parent == parent && string(body[nd.nameAt:nd.nameTo]) == string(name) {
					id = i
					break
				}
			}
		}
		// The key is the label without its first two bytes.
		label := parentLabel + 1 + len(name)
		switch parentLabel {
		case 0: // the root: ";" + name loses both cut bytes
			if len(name) > 1 {
				w.append(name[1:])
			}
		case 1: // a child of an unnamed root: ";" + name loses its ';'
			w.append(name)
		default:
			w.append(semicolon)
			w.append(name)
		}
		if id < 0 {
			id = int32(len(nodes))
			next := int32(-1)
			if found {
				next = head
			}
			buckets[h] = id
			nodes = append(nodes, treeNode{parent: parent, next: next, nameAt: int32(at), nameTo: int32(to), emits: label > 2})
			s.charge(chargeTreeNode)
		}
		nd := &nodes[id]
		nd.self = self // a repeated name keeps the last value, as Pyroscope's tree does
		if nd.emits && self != 0 && !nd.hasStack {
			nd.stack, nd.hasStack = w.node(), true
		}
		stack = append(stack, level{node: id, children: children, keyLen: len(w.key), labelLen: label})
	}
	at, to, self, children, err := read()
	if err != nil {
		return nil, &ParseError{"tree", err}
	}
	visit(-1, 0, at, to, self, children)
	for len(stack) > 0 {
		if s.err != nil {
			return nil, s.err
		}
		top := &stack[len(stack)-1]
		if top.children == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		top.children--
		parent, label := top.node, top.labelLen
		w.truncate(top.keyLen)
		at, to, self, children, err := read()
		if err != nil {
			return nil, &ParseError{"tree", err}
		}
		visit(parent, label, at, to, self, children)
	}
	for i := range nodes {
		if nd := &nodes[i]; nd.emits && nd.self != 0 {
			s.add(nd.stack, nd.self)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	if hasProfileID(md.Name) {
		return nil, nil
	}
	return textSeries(s, md.Name.App, md.SampleRate, md)
}
