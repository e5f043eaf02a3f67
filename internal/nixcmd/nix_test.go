package nixcmd

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestClosureIsInDependencyOrder(t *testing.T) {
	infos := []PathInfo{
		{Path: "/nix/store/a-root", References: []string{"/nix/store/c-lib", "/nix/store/b-app", "/nix/store/a-root"}},
		{Path: "/nix/store/b-app", References: []string{"/nix/store/c-lib"}},
		{Path: "/nix/store/c-lib", References: []string{"/nix/store/c-lib"}},
	}
	got, err := TopoSort(infos)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range got {
		names = append(names, filepath.Base(in.Path))
	}
	if strings.Join(names, " ") != "c-lib b-app a-root" {
		t.Errorf("TopoSort = %v, want c-lib b-app a-root", names)
	}
	if _, err := TopoSort([]PathInfo{{Path: "/nix/store/x", References: []string{"/nix/store/y"}}}); err == nil {
		t.Error("TopoSort with a dangling reference = nil error, want one")
	}
	cycle := []PathInfo{{Path: "/nix/store/x", References: []string{"/nix/store/y"}}, {Path: "/nix/store/y", References: []string{"/nix/store/x"}}}
	if _, err := TopoSort(cycle); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("TopoSort(cycle) = %v, want a cycle error", err)
	}
}
