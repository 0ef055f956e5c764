package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/structured-merge-diff/v6/schema"
)

// appliedHashAnnotation holds a hash of the object we last applied. It catches
// what a "desired is contained in live" check cannot: a field we used to set
// and no longer want (server-side apply removes it, so we must apply).
const appliedHashAnnotation = "profiling.pyrodist.dev/applied-hash"

// desiredHash is a stable hash of the object we are about to apply, taken
// before the hash annotation is added. encoding/json sorts map keys, so equal
// objects hash equal across processes and restarts.
func desiredHash(obj client.Object) (string, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12]), nil
}

// upToDate reports whether applying desired would change nothing the operator
// cares about: live carries the hash of exactly this desired object, and every
// field desired sets still holds the same value in live (a hand edit of one of
// our fields, or a hand-removed label, shows up here). Fields live has and
// desired does not (server defaults, other managers' fields, status) are
// ignored, as server-side apply would leave them alone too.
//
// Values that server-side apply treats as one (atomic maps, lists and
// structs in the kind's schema: a Service's selector, every LabelSelector,
// nodeSelector, container args) are the operator's as a whole once it sets
// them: a key or item added to one by hand (a Service selector that then
// matches no pod) is drift, and the forced apply that follows replaces the
// whole value, which removes it. Granular maps and lists (metadata labels,
// containers, ports) are shared by design: another manager's key or item
// there is left alone, as apply would leave it.
func upToDate(desired, live client.Object) bool {
	if live.GetAnnotations()[appliedHashAnnotation] != desired.GetAnnotations()[appliedHashAnnotation] {
		return false
	}
	if !contained(reflect.ValueOf(desired.GetLabels()), reflect.ValueOf(live.GetLabels()), node{}, false) ||
		!contained(reflect.ValueOf(desired.GetAnnotations()), reflect.ValueOf(live.GetAnnotations()), node{}, false) ||
		!contained(reflect.ValueOf(desired.GetOwnerReferences()), reflect.ValueOf(live.GetOwnerReferences()), node{}, false) {
		return false
	}
	d, l := reflect.Indirect(reflect.ValueOf(desired)), reflect.Indirect(reflect.ValueOf(live))
	if d.Type() != l.Type() || d.Kind() != reflect.Struct {
		return false
	}
	root := schemaOf(desired)
	for i := 0; i < d.NumField(); i++ {
		f := d.Type().Field(i)
		switch f.Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue // metadata compared above; status is not ours
		}
		name, _ := jsonName(f)
		if !contained(d.Field(i), l.Field(i), root.field(name), false) {
			return false
		}
	}
	return true
}

// builtinTypes holds the server-side apply schema of the built-in kinds, as
// compiled into client-go: the same list, map and struct types the API
// server merges applies with.
var builtinTypes = applyconfigurations.NewTypeConverter(clientgoscheme.Scheme)

// schemas caches the root schema node of each Go type upToDate has seen.
var schemas sync.Map // reflect.Type -> node

// schemaOf returns the schema node of obj's kind; the zero node when the kind
// is not a built-in one (every map and list then counts as granular).
func schemaOf(obj client.Object) node {
	t := reflect.TypeOf(obj)
	if n, ok := schemas.Load(t); ok {
		return n.(node)
	}
	var n node
	if gvk, err := apiutil.GVKForObject(obj, clientgoscheme.Scheme); err == nil {
		if empty, ok := reflect.New(t.Elem()).Interface().(client.Object); ok {
			empty.GetObjectKind().SetGroupVersionKind(gvk)
			if tv, err := builtinTypes.ObjectToTyped(empty); err == nil {
				n = node{s: tv.Schema(), tr: tv.TypeRef()}
			}
		}
	}
	schemas.Store(t, n)
	return n
}

// node is a place in a kind's schema; the zero node knows nothing.
type node struct {
	s  *schema.Schema
	tr schema.TypeRef
}

func (n node) atom() (schema.Atom, bool) {
	if n.s == nil {
		return schema.Atom{}, false
	}
	return n.s.Resolve(n.tr)
}

// field is the node of a struct's field, by its JSON name.
func (n node) field(name string) node {
	if a, ok := n.atom(); ok && a.Map != nil {
		if f, ok := a.Map.FindField(name); ok {
			return node{s: n.s, tr: f.Type}
		}
	}
	return node{}
}

// elem is the node of a list's items or of a map's values.
func (n node) elem() node {
	a, ok := n.atom()
	switch {
	case !ok:
	case a.List != nil:
		return node{s: n.s, tr: a.List.ElementType}
	case a.Map != nil:
		return node{s: n.s, tr: a.Map.ElementType}
	}
	return node{}
}

// atomic reports whether apply treats the value as one: whoever applies it
// replaces all of it.
func (n node) atomic() bool {
	a, ok := n.atom()
	return ok && (a.Map != nil && a.Map.ElementRelationship == schema.Atomic ||
		a.List != nil && a.List.ElementRelationship == schema.Atomic)
}

// jsonName is a struct field's name on the wire; inline is true for an
// embedded struct whose fields sit at the parent's level.
func jsonName(f reflect.StructField) (name string, inline bool) {
	name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
	if f.Anonymous && name == "" || strings.Contains(","+opts+",", ",inline,") {
		return "", true
	}
	if name == "" {
		name = f.Name
	}
	return name, false
}

var (
	quantityType = reflect.TypeOf(resource.Quantity{})
	timeType     = reflect.TypeOf(metav1.Time{})
	intstrType   = reflect.TypeOf(intstr.IntOrString{})
)

// contained reports whether every value set in d is equal in l. A zero scalar
// or an empty struct, slice or map in d counts as "not set" (the server may
// default it); a non-nil pointer is "set" even to a zero value, so an explicit
// replicas: 0 or enabled: false is compared. Lists are compared item by item
// and l may hold extra items (someone else's, which apply would keep too).
//
// n is d's place in the schema. Once d sets an atomic value, whole is true
// below it: its maps and lists must then match exactly, with no extra key or
// item, even those d leaves empty (apply would remove them). Scalars inside
// stay "not set" when zero, since the server defaults some of them (a
// fieldRef's apiVersion).
func contained(d, l reflect.Value, n node, whole bool) bool {
	if !d.IsValid() {
		return true
	}
	if !l.IsValid() {
		return d.IsZero()
	}
	switch d.Type() {
	case quantityType:
		dq, lq := d.Interface().(resource.Quantity), l.Interface().(resource.Quantity)
		return dq.IsZero() && dq.Format == "" || dq.Cmp(lq) == 0
	case timeType:
		dt, lt := d.Interface().(metav1.Time), l.Interface().(metav1.Time)
		return dt.IsZero() || dt.Equal(&lt)
	case intstrType:
		// A scalar to the API: the zero value is port/count 0, not "unset"
		// (unset is a nil pointer).
		return d.IsZero() || reflect.DeepEqual(d.Interface(), l.Interface())
	}
	switch d.Kind() {
	case reflect.Pointer:
		if d.IsNil() {
			return true
		}
		if l.IsNil() {
			return false
		}
		// An explicit pointer to a zero scalar must match exactly.
		de, le := d.Elem(), l.Elem()
		if de.Type() == intstrType || de.Kind() != reflect.Struct && de.Kind() != reflect.Slice && de.Kind() != reflect.Map {
			return reflect.DeepEqual(de.Interface(), le.Interface())
		}
		return contained(de, le, n, whole)
	case reflect.Interface:
		if d.IsNil() {
			return true
		}
		if l.IsNil() {
			return false
		}
		return contained(d.Elem(), l.Elem(), n, whole)
	case reflect.Struct:
		whole = whole || n.atomic()
		for i := 0; i < d.NumField(); i++ {
			f := d.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fn := n
			if name, inline := jsonName(f); !inline {
				fn = n.field(name)
			}
			if !contained(d.Field(i), l.Field(i), fn, whole) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if d.Len() == 0 {
			return !whole || l.Len() == 0
		}
		if d.Kind() == reflect.Slice && d.Type().Elem().Kind() == reflect.Uint8 {
			return reflect.DeepEqual(d.Interface(), l.Interface()) // []byte: whole value
		}
		whole = whole || n.atomic()
		if d.Len() > l.Len() || whole && d.Len() != l.Len() {
			return false
		}
		for i := 0; i < d.Len(); i++ {
			if !contained(d.Index(i), l.Index(i), n.elem(), whole) {
				return false
			}
		}
		return true
	case reflect.Map:
		if d.Len() == 0 {
			return !whole || l.Len() == 0
		}
		whole = whole || n.atomic()
		if l.IsNil() || whole && d.Len() != l.Len() {
			return false
		}
		iter := d.MapRange()
		for iter.Next() {
			lv := l.MapIndex(iter.Key())
			if !lv.IsValid() {
				return false
			}
			// A map entry is set even when its value is empty ("key": "").
			if iter.Value().Kind() == reflect.String {
				if iter.Value().String() != lv.String() {
					return false
				}
				continue
			}
			if !contained(iter.Value(), lv, n.elem(), whole) {
				return false
			}
		}
		return true
	default:
		if d.IsZero() {
			return true
		}
		return d.Interface() == l.Interface()
	}
}
