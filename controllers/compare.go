package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
func upToDate(desired, live client.Object) bool {
	if live.GetAnnotations()[appliedHashAnnotation] != desired.GetAnnotations()[appliedHashAnnotation] {
		return false
	}
	if !contained(reflect.ValueOf(desired.GetLabels()), reflect.ValueOf(live.GetLabels())) ||
		!contained(reflect.ValueOf(desired.GetAnnotations()), reflect.ValueOf(live.GetAnnotations())) ||
		!contained(reflect.ValueOf(desired.GetOwnerReferences()), reflect.ValueOf(live.GetOwnerReferences())) {
		return false
	}
	d, l := reflect.Indirect(reflect.ValueOf(desired)), reflect.Indirect(reflect.ValueOf(live))
	if d.Type() != l.Type() || d.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < d.NumField(); i++ {
		switch d.Type().Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue // metadata compared above; status is not ours
		}
		if !contained(d.Field(i), l.Field(i)) {
			return false
		}
	}
	return true
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
func contained(d, l reflect.Value) bool {
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
		return contained(de, le)
	case reflect.Interface:
		if d.IsNil() {
			return true
		}
		if l.IsNil() {
			return false
		}
		return contained(d.Elem(), l.Elem())
	case reflect.Struct:
		for i := 0; i < d.NumField(); i++ {
			if !d.Type().Field(i).IsExported() {
				continue
			}
			if !contained(d.Field(i), l.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if d.Len() == 0 {
			return true
		}
		if d.Kind() == reflect.Slice && d.Type().Elem().Kind() == reflect.Uint8 {
			return reflect.DeepEqual(d.Interface(), l.Interface()) // []byte: whole value
		}
		if d.Len() > l.Len() {
			return false
		}
		for i := 0; i < d.Len(); i++ {
			if !contained(d.Index(i), l.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if d.Len() == 0 {
			return true
		}
		if l.IsNil() {
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
			if !contained(iter.Value(), lv) {
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
