/*
Copyright 2026 The pyrodist Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package v1alpha1 holds the PyroscopeDistributor API (group
// profiling.pyrodist.dev, version v1alpha1).
//
// A PyroscopeDistributor runs the pyrodist distributor as one Deployment per
// availability zone, with per-zone Services, PodDisruptionBudgets and
// (optionally) HorizontalPodAutoscalers, plus a shared Service that keeps
// traffic in its zone. The operator turns this API into objects through the
// pure builders of internal/manifests.
//
// +kubebuilder:object:generate=true
// +groupName=profiling.pyrodist.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "profiling.pyrodist.dev", Version: "v1alpha1"}

	// SchemeGroupVersion is GroupVersion under the name generated
	// apply-configurations and client code look for.
	SchemeGroupVersion = GroupVersion

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
