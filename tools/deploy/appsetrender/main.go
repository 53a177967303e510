// appsetrender expands argocd/applicationset.yaml into the Applications Argo CD's
// ApplicationSet controller would generate from this repository, so that they can be checked
// like every other manifest (kcheck against the Application CRD, validate.mjs for the sync
// policies and paths). It implements what the file uses: goTemplate with missingkey=error,
// matrix generators of list and git-files generators (files read from the repository; the
// file's YAML and .path.* as parameters), template fields rendered one string at a time, and
// templatePatch rendered and merged into the result (maps merged, lists replaced, null
// deleting, as a merge patch does).
//
// Usage: appsetrender -root REPO APPLICATIONSET.yaml > applications.yaml
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

type params = map[string]interface{}

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "appsetrender: "+f+"\n", a...)
	os.Exit(1)
}

// gen returns the parameter sets of one generator.
func gen(root string, g map[string]interface{}) []params {
	switch {
	case g["list"] != nil:
		l := g["list"].(map[string]interface{})
		var out []params
		for _, e := range l["elements"].([]interface{}) {
			out = append(out, copyMap(e.(map[string]interface{})))
		}
		return out
	case g["git"] != nil:
		gg := g["git"].(map[string]interface{})
		files, ok := gg["files"].([]interface{})
		if !ok {
			die("git generator without files: not supported")
		}
		include := map[string]bool{}
		for _, f := range files {
			fm := f.(map[string]interface{})
			matches, err := filepath.Glob(filepath.Join(root, fm["path"].(string)))
			if err != nil {
				die("%v", err)
			}
			for _, m := range matches {
				rel, _ := filepath.Rel(root, m)
				if ex, _ := fm["exclude"].(bool); ex {
					delete(include, rel)
				} else {
					include[rel] = true
				}
			}
		}
		var rels []string
		for r := range include {
			rels = append(rels, r)
		}
		sort.Strings(rels)
		var out []params
		for _, rel := range rels {
			raw, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				die("%v", err)
			}
			p := params{}
			if err := yaml.Unmarshal(raw, &p); err != nil {
				die("%s: %v", rel, err)
			}
			dir := filepath.Dir(rel)
			p["path"] = params{"path": dir, "basename": filepath.Base(dir),
				"filename": filepath.Base(rel), "segments": toIface(strings.Split(dir, "/"))}
			out = append(out, p)
		}
		return out
	case g["matrix"] != nil:
		gs := g["matrix"].(map[string]interface{})["generators"].([]interface{})
		if len(gs) != 2 {
			die("matrix with %d generators: not supported", len(gs))
		}
		var out []params
		for _, a := range gen(root, gs[0].(map[string]interface{})) {
			for _, b := range gen(root, gs[1].(map[string]interface{})) {
				m := copyMap(a)
				for k, v := range b {
					if _, dup := m[k]; dup {
						die("matrix: parameter %q comes from both generators", k)
					}
					m[k] = v
				}
				out = append(out, m)
			}
		}
		return out
	}
	die("generator not supported: %v", keys(g))
	return nil
}

func render(s string, p params) string {
	t, err := template.New("t").Option("missingkey=error").Parse(s)
	if err != nil {
		die("template %q: %v", s, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		die("template %q: %v", s, err)
	}
	return b.String()
}

// renderAll renders every string in v (keys too).
func renderAll(v interface{}, p params) interface{} {
	switch x := v.(type) {
	case string:
		return render(x, p)
	case map[string]interface{}:
		m := map[string]interface{}{}
		for k, e := range x {
			m[render(k, p)] = renderAll(e, p)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(x))
		for i, e := range x {
			l[i] = renderAll(e, p)
		}
		return l
	}
	return v
}

// merge applies src to dst as a merge patch does: maps merged, other values replaced, null
// deletes.
func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func copyMap(m map[string]interface{}) map[string]interface{} {
	raw, _ := yaml.Marshal(m)
	out := map[string]interface{}{}
	_ = yaml.Unmarshal(raw, &out)
	return out
}

func toIface(s []string) []interface{} {
	out := make([]interface{}, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func keys(m map[string]interface{}) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func main() {
	root := flag.String("root", ".", "the repository the git generators read")
	flag.Parse()
	if flag.NArg() != 1 {
		die("usage: appsetrender -root REPO APPLICATIONSET.yaml")
	}
	raw, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		die("%v", err)
	}
	var as map[string]interface{}
	if err := yaml.Unmarshal(raw, &as); err != nil {
		die("%v", err)
	}
	spec := as["spec"].(map[string]interface{})
	if gt, _ := spec["goTemplate"].(bool); !gt {
		die("only goTemplate ApplicationSets are supported")
	}
	var all []params
	for _, g := range spec["generators"].([]interface{}) {
		all = append(all, gen(*root, g.(map[string]interface{}))...)
	}
	if len(all) == 0 {
		die("the generators produce no parameter set")
	}
	patch, _ := spec["templatePatch"].(string)
	names := map[string]bool{}
	for _, p := range all {
		app := renderAll(spec["template"], p).(map[string]interface{})
		if patch != "" {
			pm := map[string]interface{}{}
			if err := yaml.Unmarshal([]byte(render(patch, p)), &pm); err != nil {
				die("templatePatch: %v", err)
			}
			merge(app, pm)
		}
		md := app["metadata"].(map[string]interface{})
		md["namespace"] = as["metadata"].(map[string]interface{})["namespace"]
		name := md["name"].(string)
		if names[name] {
			die("two Applications named %q", name)
		}
		names[name] = true
		out := map[string]interface{}{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
			"metadata": md, "spec": app["spec"]}
		b, err := yaml.Marshal(out)
		if err != nil {
			die("%v", err)
		}
		fmt.Printf("---\n%s", b)
	}
}
