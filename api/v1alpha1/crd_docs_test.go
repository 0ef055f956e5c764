package v1alpha1_test

import (
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// Every field of the generated CRD carries a description, so `kubectl
// explain pyd.spec...` documents each one. A field
// added without a doc comment fails here after `make manifests`.
func TestEveryCRDFieldIsDocumented(t *testing.T) {
	crd := generatedCRD(t)
	if len(crd.Spec.Versions) == 0 {
		t.Fatal("CRD has no versions")
	}
	fields := 0
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		for name, p := range s.Properties {
			fields++
			if name == "metadata" && path == "" {
				continue // ObjectMeta: documented by Kubernetes itself
			}
			if p.Description == "" {
				t.Errorf("%s.%s has no description", path, name)
			}
			walk(path+"."+name, p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", *s.Items.Schema)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			walk(path+"{}", *s.AdditionalProperties.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			t.Fatalf("version %s has no schema", v.Name)
		}
		walk("", *v.Schema.OpenAPIV3Schema)
	}
	if fields < 50 {
		t.Fatalf("walked only %d fields; the schema walk is broken", fields)
	}
}

// generatedCRD reads the CRD that `make manifests` generated.
func generatedCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "profiling.pyrodist.dev_pyroscopedistributors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(raw, crd); err != nil {
		t.Fatal(err)
	}
	return crd
}
