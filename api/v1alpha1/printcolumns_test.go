package v1alpha1_test

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// `kubectl get pyd` shows the Ready condition and its reason by default, so
// a failed object stands out in a list.
func TestPrinterColumnsShowReadyAndReason(t *testing.T) {
	crd := generatedCRD(t)
	want := map[string]string{
		"Ready":  `.status.conditions[?(@.type=="Ready")].status`,
		"Reason": `.status.conditions[?(@.type=="Ready")].reason`,
	}
	for _, v := range crd.Spec.Versions {
		got := map[string]apiextensionsv1.CustomResourceColumnDefinition{}
		for _, c := range v.AdditionalPrinterColumns {
			if _, dup := got[c.Name]; dup {
				t.Errorf("version %s: column %s twice", v.Name, c.Name)
			}
			got[c.Name] = c
		}
		for name, path := range want {
			c, ok := got[name]
			if !ok || c.JSONPath != path || c.Type != "string" || c.Priority != 0 {
				t.Errorf("version %s: column %s = %+v, want a default string column at %s", v.Name, name, c, path)
			}
		}
	}
}
