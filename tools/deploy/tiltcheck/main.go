// tiltcheck evaluates a Tiltfile as Starlark with Tilt's built-in functions replaced by stubs
// that check their arguments the way Tilt does (unknown keyword arguments, wrong types, a
// chart or file path that does not exist) and record the resources the file declares. After
// evaluation every resource_deps entry must name a declared resource, and every k8s_resource
// must name a workload that a chart or local_resource produced.
//
// helm() runs the real helm (-helm) to render the chart with the given values, so a values
// error fails here as it would in Tilt, and the workloads it declares are the rendered ones
// (Tilt names a resource after its workload). load("ext://restart_process") gives
// docker_build_with_restart, checked like docker_build.
//
// Usage: tiltcheck [-root DIR] -helm HELM Tiltfile
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
	"sigs.k8s.io/yaml"
)

type state struct {
	root      string
	helm      string
	resources map[string]bool     // declared resources: workloads and local resources
	deps      map[string][]string // resource -> resource_deps
	images    map[string]bool
	errs      []string
}

func (s *state) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.root, p)
}

func (s *state) mustExist(fn, p string) error {
	if _, err := os.Stat(s.path(p)); err != nil {
		return fmt.Errorf("%s: path %q does not exist", fn, p)
	}
	return nil
}

func strList(v starlark.Value, what string) ([]string, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	if s, ok := v.(starlark.String); ok {
		return []string{string(s)}, nil
	}
	l, ok := v.(*starlark.List)
	if !ok {
		return nil, fmt.Errorf("%s: want a string or a list of strings, got %s", what, v.Type())
	}
	var out []string
	for i := 0; i < l.Len(); i++ {
		s, ok := l.Index(i).(starlark.String)
		if !ok {
			return nil, fmt.Errorf("%s: element %d is %s, not a string", what, i, l.Index(i).Type())
		}
		out = append(out, string(s))
	}
	return out, nil
}

// blob is what helm() and local() return in Tilt: YAML text, here with the workloads it holds.
type blob struct {
	text      string
	workloads []string
}

func (b *blob) String() string        { return b.text }
func (b *blob) Type() string          { return "blob" }
func (b *blob) Freeze()               {}
func (b *blob) Truth() starlark.Bool  { return starlark.True }
func (b *blob) Hash() (uint32, error) { return starlark.String(b.text).Hash() }

func (s *state) builtins() starlark.StringDict {
	b := func(name string, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, fn)
	}
	return starlark.StringDict{
		"helm": b("helm", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var path, name, namespace string
			var values, set, kubeVersion starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "paths", &path, "name?", &name,
				"namespace?", &namespace, "values?", &values, "set?", &set, "kube_version?", &kubeVersion); err != nil {
				return nil, err
			}
			if err := s.mustExist("helm", filepath.Join(path, "Chart.yaml")); err != nil {
				return nil, err
			}
			vals, err := strList(values, "helm values")
			if err != nil {
				return nil, err
			}
			for _, v := range vals {
				if err := s.mustExist("helm values", v); err != nil {
					return nil, err
				}
			}
			sets, err := strList(set, "helm set")
			if err != nil {
				return nil, err
			}
			if name == "" {
				name = filepath.Base(path)
			}
			cmd := []string{"template", name, s.path(path)}
			if namespace != "" {
				cmd = append(cmd, "--namespace", namespace)
			}
			for _, v := range vals {
				cmd = append(cmd, "-f", s.path(v))
			}
			for _, v := range sets {
				cmd = append(cmd, "--set", v)
			}
			var out, errb bytes.Buffer
			c := exec.Command(s.helm, cmd...)
			c.Stdout, c.Stderr = &out, &errb
			if err := c.Run(); err != nil {
				return nil, fmt.Errorf("helm template %s: %v: %s", path, err, strings.TrimSpace(errb.String()))
			}
			var workloads []string
			for _, doc := range strings.Split(out.String(), "\n---") {
				var o struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
				}
				if yaml.Unmarshal([]byte(doc), &o) != nil {
					continue
				}
				switch o.Kind {
				case "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod":
					workloads = append(workloads, strings.ToLower(o.Metadata.Name))
				}
			}
			return &blob{text: out.String(), workloads: workloads}, nil
		}),
		"k8s_yaml": b("k8s_yaml", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var y starlark.Value
			var allowDup bool
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "yaml", &y, "allow_duplicates?", &allowDup); err != nil {
				return nil, err
			}
			switch v := y.(type) {
			case *blob:
				for _, w := range v.workloads {
					s.resources[w] = true
				}
			case starlark.String:
				if err := s.mustExist("k8s_yaml", string(v)); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("k8s_yaml: want a helm() result or a file path, got %s", y.Type())
			}
			return starlark.None, nil
		}),
		"k8s_resource": b("k8s_resource", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var workload, newName string
			var portForwards, extraPodSelectors, deps, objects, labels, links starlark.Value
			var triggerMode, autoInit, podReadiness, discoveryStrategy starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "workload?", &workload,
				"new_name?", &newName, "port_forwards?", &portForwards,
				"extra_pod_selectors?", &extraPodSelectors, "trigger_mode?", &triggerMode,
				"resource_deps?", &deps, "objects?", &objects, "auto_init?", &autoInit,
				"pod_readiness?", &podReadiness, "links?", &links, "labels?", &labels,
				"discovery_strategy?", &discoveryStrategy); err != nil {
				return nil, err
			}
			if workload == "" {
				return nil, fmt.Errorf("k8s_resource: workload is required here")
			}
			if !s.resources[workload] {
				return nil, fmt.Errorf("k8s_resource: no workload named %q (declare its chart first)", workload)
			}
			if _, err := strList(portForwards, "port_forwards"); err != nil {
				return nil, err
			}
			d, err := strList(deps, "resource_deps")
			if err != nil {
				return nil, err
			}
			name := workload
			if newName != "" {
				delete(s.resources, workload)
				name = newName
				s.resources[name] = true
			}
			s.deps[name] = append(s.deps[name], d...)
			return starlark.None, nil
		}),
		"local_resource": b("local_resource", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var name string
			var cmd, serveCmd, deps, resourceDeps, ignore, labels, links, env, serveEnv starlark.Value
			var triggerMode, autoInit, allowParallel, readinessProbe, dir, serveDir starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "name", &name, "cmd?", &cmd,
				"deps?", &deps, "trigger_mode?", &triggerMode, "resource_deps?", &resourceDeps,
				"ignore?", &ignore, "auto_init?", &autoInit, "serve_cmd?", &serveCmd,
				"allow_parallel?", &allowParallel, "links?", &links, "labels?", &labels,
				"env?", &env, "serve_env?", &serveEnv, "readiness_probe?", &readinessProbe,
				"dir?", &dir, "serve_dir?", &serveDir); err != nil {
				return nil, err
			}
			if s.resources[name] {
				return nil, fmt.Errorf("local_resource: %q declared twice", name)
			}
			ds, err := strList(deps, "deps")
			if err != nil {
				return nil, err
			}
			for _, p := range ds {
				if err := s.mustExist("local_resource deps", p); err != nil {
					return nil, err
				}
			}
			rd, err := strList(resourceDeps, "resource_deps")
			if err != nil {
				return nil, err
			}
			s.resources[name] = true
			s.deps[name] = append(s.deps[name], rd...)
			return starlark.None, nil
		}),
		"docker_build": b("docker_build", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var ref, context string
			var buildArgs, dockerfile, liveUpdate, only, ignore, target, entrypoint, platform starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "ref", &ref, "context", &context,
				"build_args?", &buildArgs, "dockerfile?", &dockerfile, "live_update?", &liveUpdate,
				"only?", &only, "ignore?", &ignore, "target?", &target,
				"entrypoint?", &entrypoint, "platform?", &platform); err != nil {
				return nil, err
			}
			return s.image(ref, context, dockerfile, only)
		}),
	}
}

// image checks what docker_build and docker_build_with_restart share and records the image.
func (s *state) image(ref, context string, dockerfile, only starlark.Value) (starlark.Value, error) {
	if err := s.mustExist("docker_build context", context); err != nil {
		return nil, err
	}
	if df, ok := dockerfile.(starlark.String); ok {
		if err := s.mustExist("docker_build dockerfile", string(df)); err != nil {
			return nil, err
		}
	}
	if _, err := strList(only, "only"); err != nil {
		return nil, err
	}
	s.images[ref] = true
	return starlark.None, nil
}

func (s *state) more() starlark.StringDict {
	b := func(name string, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, fn)
	}
	return starlark.StringDict{
		"sync": b("sync", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var local, remote string
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "local_path", &local, "remote_path", &remote); err != nil {
				return nil, err
			}
			if err := s.mustExist("sync", local); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(remote, "/") {
				return nil, fmt.Errorf("sync: remote_path %q is not absolute", remote)
			}
			return starlark.String("sync " + local), nil
		}),
		"run": b("run", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var cmd string
			var trigger, echoOff starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "cmd", &cmd, "trigger?", &trigger, "echo_off?", &echoOff); err != nil {
				return nil, err
			}
			return starlark.String("run " + cmd), nil
		}),
		"port_forward": b("port_forward", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var local int
			var container starlark.Value
			var name, host, linkPath string
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "local_port", &local, "container_port?", &container,
				"name?", &name, "link_path?", &linkPath, "host?", &host); err != nil {
				return nil, err
			}
			if local < 1 || local > 65535 {
				return nil, fmt.Errorf("port_forward: local_port %d out of range", local)
			}
			return starlark.String(fmt.Sprintf("%d", local)), nil
		}),
		"allow_k8s_contexts": b("allow_k8s_contexts", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var ctx starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "contexts", &ctx); err != nil {
				return nil, err
			}
			_, err := strList(ctx, "contexts")
			return starlark.None, err
		}),
		"update_settings": b("update_settings", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var maxParallel, k8sUpsertTimeout, suppressUnused starlark.Value
			err := starlark.UnpackArgs(fn.Name(), args, kw, "max_parallel_updates?", &maxParallel,
				"k8s_upsert_timeout_secs?", &k8sUpsertTimeout, "suppress_unused_image_warnings?", &suppressUnused)
			return starlark.None, err
		}),
		"os": starlarkstruct.FromStringDict(starlark.String("os"), starlark.StringDict{
			"getenv": b("os.getenv", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
				var key string
				var def starlark.Value = starlark.String("")
				if err := starlark.UnpackArgs(fn.Name(), args, kw, "key", &key, "default?", &def); err != nil {
					return nil, err
				}
				if v, ok := os.LookupEnv(key); ok {
					return starlark.String(v), nil
				}
				return def, nil
			}),
		}),
	}
}

// restartProcess is Tilt's ext://restart_process extension: docker_build_with_restart.
func (s *state) restartProcess() starlark.StringDict {
	return starlark.StringDict{
		"docker_build_with_restart": starlark.NewBuiltin("docker_build_with_restart", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var ref, context string
			var entrypoint, buildArgs, dockerfile, liveUpdate, only, ignore, target, platform, restartFile, traceFlag starlark.Value
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "ref", &ref, "context", &context,
				"entrypoint", &entrypoint, "build_args?", &buildArgs, "dockerfile?", &dockerfile,
				"live_update?", &liveUpdate, "only?", &only, "ignore?", &ignore, "target?", &target,
				"platform?", &platform, "restart_file?", &restartFile, "trace?", &traceFlag); err != nil {
				return nil, err
			}
			if _, err := strList(entrypoint, "entrypoint"); err != nil {
				return nil, err
			}
			return s.image(ref, context, dockerfile, only)
		}),
	}
}

func main() {
	root := flag.String("root", "", "directory paths are relative to (default: the Tiltfile's)")
	helm := flag.String("helm", "helm", "the helm binary helm() renders charts with")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tiltcheck [-root DIR] -helm HELM Tiltfile")
		os.Exit(2)
	}
	file := flag.Arg(0)
	s := &state{root: *root, helm: *helm, resources: map[string]bool{}, deps: map[string][]string{}, images: map[string]bool{}}
	if s.root == "" {
		s.root = filepath.Dir(file)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tiltcheck:", err)
		os.Exit(2)
	}
	thread := &starlark.Thread{Name: "Tiltfile", Print: func(_ *starlark.Thread, msg string) { fmt.Println("Tiltfile:", msg) }}
	thread.Load = func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
		if module == "ext://restart_process" {
			return s.restartProcess(), nil
		}
		return nil, fmt.Errorf("load: no stub for module %q", module)
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
	predeclared := s.builtins()
	for k, v := range s.more() {
		predeclared[k] = v
	}
	if _, err := starlark.ExecFileOptions(opts, thread, file, src, predeclared); err != nil {
		if ee, ok := err.(*starlark.EvalError); ok {
			fmt.Println("tiltcheck: FAIL:", ee.Backtrace())
		} else {
			fmt.Println("tiltcheck: FAIL:", err)
		}
		os.Exit(1)
	}
	var bad []string
	for r, ds := range s.deps {
		for _, d := range ds {
			if !s.resources[d] {
				bad = append(bad, fmt.Sprintf("resource %q depends on unknown resource %q", r, d))
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		fmt.Println("tiltcheck: FAIL:", b)
	}
	if len(bad) > 0 {
		os.Exit(1)
	}
	if len(s.resources) == 0 {
		fmt.Println("tiltcheck: FAIL: the Tiltfile declares no resource")
		os.Exit(1)
	}
	fmt.Printf("tiltcheck: ok: %d resources, %d images\n", len(s.resources), len(s.images))
}
