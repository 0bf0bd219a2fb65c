// Command kstatus prints the kstatus status (the library behind Flux's health
// checks and `kubectl wait`-like tools) of Kubernetes objects: it reads a JSON
// array of objects on stdin and writes one JSON line per object:
// {"name": ..., "status": "Current"|"InProgress"|"Failed"|..., "message": ...}.
// e2e/tests/e2e/gitops.rs runs it on the objects the operator wrote.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	var objects []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: a JSON array of objects is expected on stdin:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, object := range objects {
		// The apimachinery decoder keeps integers as int64, as kstatus expects.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(object); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: not a Kubernetes object:", err)
			os.Exit(2)
		}
		result, err := status.Compute(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", u.GetName(), err)
			os.Exit(1)
		}
		if err := out.Encode(map[string]string{
			"name":    u.GetName(),
			"status":  result.Status.String(),
			"message": result.Message,
		}); err != nil {
			os.Exit(1)
		}
	}
}
