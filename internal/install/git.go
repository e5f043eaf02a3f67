package install

import (
	"os/exec"
	"path/filepath"
)

// gitAddIntent marks a generated file as intent-to-add when it lies in a
// git work tree: flakes only see files git knows about.
func gitAddIntent(file string) {
	dir := filepath.Dir(file)
	if exec.Command("git", "-C", dir, "rev-parse", "--is-inside-work-tree").Run() != nil {
		return
	}
	exec.Command("git", "-C", dir, "add", "--intent-to-add", "--force", "--", filepath.Base(file)).Run()
}
