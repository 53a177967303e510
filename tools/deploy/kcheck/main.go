// kcheck validates Kubernetes manifests offline, the way an API server with strict field
// validation would: built-in kinds are decoded strictly into client-go's types (an unknown or
// duplicated field is an error), custom resources are checked against the openAPIV3Schema of
// their CustomResourceDefinition (unknown fields found by the API server's own pruning code,
// then the schema's types, enums, patterns and required fields). A document whose kind has no
// schema is an error, never skipped.
//
// A group named with -unchecked is the one exception: its objects are counted and listed as not
// schema-checked, loudly, for a project whose CRDs no registry serves (Strimzi's).
//
// Usage: kcheck [-crds DIR]... [-unchecked GROUP]... FILE...
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structural "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

type crdVersion struct {
	structural *structural.Structural
	validator  validation.SchemaValidator
	namespaced bool
}

type dirs []string

func (d *dirs) String() string     { return strings.Join(*d, ",") }
func (d *dirs) Set(v string) error { *d = append(*d, v); return nil }

// splitDocs returns the YAML documents of r (empty ones left out).
func splitDocs(r io.Reader) ([][]byte, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out [][]byte
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var probe map[string]interface{}
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, err
		}
		if probe == nil {
			continue
		}
		out = append(out, doc)
	}
}

// loadCRDs reads every CustomResourceDefinition in the YAML files under dir into crds,
// keyed by group/version/kind.
func loadCRDs(dir string, crds map[schema.GroupVersionKind]*crdVersion) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		docs, err := splitDocs(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, doc := range docs {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil || tm.Kind != "CustomResourceDefinition" {
				continue
			}
			var crd apiextv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			for i := range crd.Spec.Versions {
				v := &crd.Spec.Versions[i]
				if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
					return fmt.Errorf("%s: %s %s has no schema", p, crd.Name, v.Name)
				}
				var in apiext.JSONSchemaProps
				if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &in, nil); err != nil {
					return fmt.Errorf("%s: %s: %w", p, crd.Name, err)
				}
				st, err := structural.NewStructural(&in)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", p, crd.Name, err)
				}
				val, _, err := validation.NewSchemaValidator(&in)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", p, crd.Name, err)
				}
				gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
				crds[gvk] = &crdVersion{structural: st, validator: val,
					namespaced: crd.Spec.Scope == apiextv1.NamespaceScoped}
			}
		}
		return nil
	})
}

// checkCustom validates one custom resource against its CRD version.
func checkCustom(doc []byte, cv *crdVersion) []string {
	var obj map[string]interface{}
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return []string{err.Error()}
	}
	var errs []string
	if md, ok := obj["metadata"]; ok {
		raw, _ := json.Marshal(md)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var om metav1.ObjectMeta
		if err := dec.Decode(&om); err != nil {
			errs = append(errs, "metadata: "+err.Error())
		}
	} else {
		errs = append(errs, "metadata: required")
	}
	pruned := pruning.PruneWithOptions(runtimeCopy(obj), cv.structural, true,
		structural.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range pruned {
		errs = append(errs, "unknown field \""+p+"\"")
	}
	for _, e := range validation.ValidateCustomResource(field.NewPath(""), obj, cv.validator) {
		errs = append(errs, e.Error())
	}
	return errs
}

// runtimeCopy deep-copies a JSON-shaped value (pruning edits its argument).
func runtimeCopy(v map[string]interface{}) map[string]interface{} {
	raw, _ := json.Marshal(v)
	var out map[string]interface{}
	_ = json.Unmarshal(raw, &out)
	return out
}

func main() {
	var crdDirs dirs
	flag.Var(&crdDirs, "crds", "directory of CustomResourceDefinition YAML files (repeatable)")
	var unchecked dirs
	flag.Var(&unchecked, "unchecked", "API group whose objects have no CRD to check against (repeatable; listed, not failed)")
	quiet := flag.Bool("q", false, "print only errors")
	flag.Parse()
	crds := map[schema.GroupVersionKind]*crdVersion{}
	for _, d := range crdDirs {
		if err := loadCRDs(d, crds); err != nil {
			fmt.Fprintln(os.Stderr, "kcheck:", err)
			os.Exit(2)
		}
	}
	strict := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	nobj, nbad := 0, 0
	notChecked := map[string]int{}
	for _, file := range flag.Args() {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kcheck:", err)
			os.Exit(2)
		}
		docs, err := splitDocs(f)
		f.Close()
		if err != nil {
			fmt.Printf("%s: not YAML: %v\n", file, err)
			nbad++
			continue
		}
		for _, doc := range docs {
			nobj++
			var tm metav1.TypeMeta
			var meta struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			_ = yaml.Unmarshal(doc, &tm)
			_ = yaml.Unmarshal(doc, &meta)
			name := fmt.Sprintf("%s: %s %s/%s", file, tm.APIVersion, tm.Kind, meta.Metadata.Name)
			gv, err := schema.ParseGroupVersion(tm.APIVersion)
			var errs []string
			switch {
			case err != nil || tm.Kind == "":
				errs = []string{"no apiVersion/kind"}
			case scheme.Scheme.Recognizes(gv.WithKind(tm.Kind)):
				if _, _, err := strict.Decode(doc, nil, nil); err != nil {
					errs = []string{err.Error()}
				}
			case crds[gv.WithKind(tm.Kind)] != nil:
				errs = checkCustom(doc, crds[gv.WithKind(tm.Kind)])
			case contains(unchecked, gv.Group):
				notChecked[tm.APIVersion+" "+tm.Kind]++
				continue
			default:
				errs = []string{"no schema known for this kind (not built in, no CRD given)"}
			}
			if len(errs) > 0 {
				nbad++
				sort.Strings(errs)
				for _, e := range errs {
					fmt.Printf("%s: %s\n", name, e)
				}
			} else if !*quiet {
				fmt.Printf("%s: ok\n", name)
			}
		}
	}
	keys := make([]string, 0, len(notChecked))
	for k := range notChecked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("kcheck: NOT SCHEMA-CHECKED (no CRD available): %d x %s\n", notChecked[k], k)
	}
	fmt.Printf("kcheck: %d objects, %d invalid\n", nobj, nbad)
	if nbad > 0 || nobj == 0 {
		os.Exit(1)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
