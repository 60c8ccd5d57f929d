// manifest-check validates Keyflow's deployment files against the real schemas:
//
//	manifest-check kubernetes FILE...  every YAML document is decoded STRICTLY into the Go type that the
//	                                   Kubernetes API (k8s.io/api) or KEDA (kedacore/keda/v2 apis) defines for
//	                                   its apiVersion+kind: an unknown kind, an unknown or misspelt field, or a
//	                                   value of the wrong type is an error; then a few API-server rules that
//	                                   typed decoding cannot see (names, containers, ports, selectors, probes,
//	                                   ScaledObject triggers) are checked.
//	manifest-check json FILE...        validates as `kubernetes` does, then prints every document as one JSON
//	                                   array (so tests can assert on the manifests without a YAML parser).
//	manifest-check compose FILE        loads the file with compose-go (the reference Compose implementation's
//	                                   loader), which validates it against the Compose specification's schema
//	                                   and resolves interpolation, depends_on and the rest.
//
// Prints one line per problem and exits 1 when there is any; exits 0 and prints "ok ..." otherwise.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: manifest-check kubernetes FILE... | manifest-check compose FILE")
		os.Exit(2)
	}
	var problems []string
	switch os.Args[1] {
	case "kubernetes", "json":
		var docs []json.RawMessage
		for _, f := range os.Args[2:] {
			p, d := checkKubernetesFile(f)
			problems = append(problems, p...)
			docs = append(docs, d...)
		}
		if os.Args[1] == "json" && len(problems) == 0 {
			out, _ := json.Marshal(docs)
			fmt.Println(string(out))
			return
		}
	case "compose":
		for _, f := range os.Args[2:] {
			if err := checkCompose(f); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "manifest-check: unknown mode %q (kubernetes or compose)\n", os.Args[1])
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("ok %s: %d file(s)\n", os.Args[1], len(os.Args)-2)
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, kedav1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

var scheme = newScheme()

func checkKubernetesFile(file string) ([]string, []json.RawMessage) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}, nil
	}
	var problems []string
	var docs []json.RawMessage
	reader := utilyaml.NewYAMLReader(bufioReader(raw))
	n := 0
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return append(problems, fmt.Sprintf("%s: %v", file, err)), nil
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		n++
		where := fmt.Sprintf("%s (document %d)", filepath.Base(file), n)
		for _, p := range checkDocument(doc) {
			problems = append(problems, where+": "+p)
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil {
			docs = append(docs, j)
		}
	}
	if n == 0 {
		problems = append(problems, file+": no Kubernetes documents")
	}
	return problems, docs
}

func checkDocument(doc []byte) []string {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return []string{err.Error()}
	}
	if head.APIVersion == "" || head.Kind == "" {
		return []string{"apiVersion and kind are required"}
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		return []string{err.Error()}
	}
	obj, err := scheme.New(gv.WithKind(head.Kind))
	if err != nil {
		return []string{fmt.Sprintf("unknown kind %s %s", head.APIVersion, head.Kind)}
	}
	// Strict: an unknown field, a duplicate field or a wrong type is an error, as `kubectl --validate=strict`.
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return []string{fmt.Sprintf("%s: %v", head.Kind, err)}
	}
	return semantic(obj)
}

func dnsName(what, name string) []string {
	var out []string
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		out = append(out, fmt.Sprintf("%s %q: %s", what, name, msg))
	}
	return out
}

func semantic(obj runtime.Object) []string {
	var p []string
	meta := func(name string) {
		if name == "" {
			p = append(p, "metadata.name is required")
		} else {
			p = append(p, dnsName("metadata.name", name)...)
		}
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		meta(o.Name)
		if o.Spec.Selector == nil || len(o.Spec.Selector.MatchLabels) == 0 {
			p = append(p, "Deployment: spec.selector.matchLabels is required")
		} else {
			for k, v := range o.Spec.Selector.MatchLabels {
				if o.Spec.Template.Labels[k] != v {
					p = append(p, fmt.Sprintf("Deployment: selector %s=%s does not match the pod template labels", k, v))
				}
			}
		}
		p = append(p, podSpec(o.Spec.Template.Spec)...)
	case *corev1.Service:
		meta(o.Name)
		if len(o.Spec.Ports) == 0 {
			p = append(p, "Service: spec.ports must not be empty")
		}
		for _, port := range o.Spec.Ports {
			if port.Port < 1 || port.Port > 65535 {
				p = append(p, fmt.Sprintf("Service: port %d out of range", port.Port))
			}
		}
	case *policyv1.PodDisruptionBudget:
		meta(o.Name)
		if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
			p = append(p, "PodDisruptionBudget: set exactly one of minAvailable and maxUnavailable")
		}
		if o.Spec.Selector == nil {
			p = append(p, "PodDisruptionBudget: spec.selector is required")
		}
	case *corev1.Secret:
		meta(o.Name)
	case *corev1.ConfigMap:
		meta(o.Name)
	case *kedav1alpha1.ScaledObject:
		meta(o.Name)
		if o.Spec.ScaleTargetRef == nil || o.Spec.ScaleTargetRef.Name == "" {
			p = append(p, "ScaledObject: spec.scaleTargetRef.name is required")
		}
		if len(o.Spec.Triggers) == 0 {
			p = append(p, "ScaledObject: spec.triggers must not be empty")
		}
		for i, t := range o.Spec.Triggers {
			if t.Type == "" {
				p = append(p, fmt.Sprintf("ScaledObject: triggers[%d].type is required", i))
			}
			if t.Type == "kafka" {
				for _, k := range []string{"bootstrapServers", "consumerGroup", "lagThreshold"} {
					if t.Metadata[k] == "" && t.Metadata[k+"FromEnv"] == "" {
						p = append(p, fmt.Sprintf("ScaledObject: kafka trigger %d needs metadata.%s", i, k))
					}
				}
			}
		}
		if o.Spec.MinReplicaCount != nil && o.Spec.MaxReplicaCount != nil && *o.Spec.MinReplicaCount > *o.Spec.MaxReplicaCount {
			p = append(p, "ScaledObject: minReplicaCount is above maxReplicaCount")
		}
	}
	return p
}

func podSpec(s corev1.PodSpec) []string {
	var p []string
	if len(s.Containers) == 0 {
		p = append(p, "pod: spec.containers must not be empty")
	}
	for _, c := range s.Containers {
		if c.Name == "" || c.Image == "" {
			p = append(p, "pod: every container needs a name and an image")
		}
		named := map[string]bool{}
		for _, port := range c.Ports {
			if port.ContainerPort < 1 || port.ContainerPort > 65535 {
				p = append(p, fmt.Sprintf("container %s: containerPort %d out of range", c.Name, port.ContainerPort))
			}
			named[port.Name] = true
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if probe != nil && probe.HTTPGet != nil && probe.HTTPGet.Port.StrVal != "" && !named[probe.HTTPGet.Port.StrVal] {
				p = append(p, fmt.Sprintf("container %s: probe port %q names no container port", c.Name, probe.HTTPGet.Port.StrVal))
			}
		}
	}
	return p
}

func checkCompose(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithName("keyflow"), cli.WithOsEnv)
	if err != nil {
		return err
	}
	_, err = opts.LoadProject(context.Background())
	return err
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
