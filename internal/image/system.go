package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// stageSystem prepares what --system puts into the image, as a tree to copy to /nix: the
// closure of toplevel (hard links to the build machine's store where it can), the Nix
// database that registers it (nix-store --load-db into a store rooted at the tree, so the
// booted system sees its store as valid), and the system profile pointing at toplevel.
// It returns the tree, a directory the caller removes. The bootloader is installed
// later, over the staged trees of all volumes (installBootloader).
func stageSystem(ctx context.Context, dir, toplevel, closureInfo string) (root string, err error) {
	if !strings.HasPrefix(toplevel, "/nix/store/") {
		return "", fmt.Errorf("--system %s: not a store path", toplevel)
	}
	paths, reg, err := closureOf(ctx, toplevel, closureInfo)
	if err != nil {
		return "", err
	}
	root, err = os.MkdirTemp(dir, systemStaging)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			removeTree(root)
		}
	}()
	store := filepath.Join(root, "nix", "store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		return "", err
	}
	// The closure is copied while the database is made (in /nix/var; in /nix/store
	// nix-store makes only .links).
	copied := make(chan error, 1)
	go func() { copied <- copyClosure(ctx, store, paths) }()
	loadErr := loadDB(ctx, root, toplevel, paths, reg)
	if err := <-copied; err != nil {
		return "", err
	}
	if loadErr != nil {
		return "", loadErr
	}
	// Nix makes a file of reserved space for garbage collection; the installed system
	// makes its own.
	os.Remove(filepath.Join(root, "nix", "var", "nix", "db", "reserved"))
	profiles := filepath.Join(root, "nix", "var", "nix", "profiles")
	if err := os.MkdirAll(profiles, 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(toplevel, filepath.Join(profiles, "system-1-link")); err != nil {
		return "", err
	}
	if err := os.Symlink("system-1-link", filepath.Join(profiles, "system")); err != nil {
		return "", err
	}
	return root, nil
}

// copyClosure puts the store paths into store with one cp: hard links when the build
// machine's store is on the same filesystem (nothing is copied twice), else copies.
func copyClosure(ctx context.Context, store string, paths []string) error {
	if run(ctx, "cp", append([]string{"-a", "--link", "-t", store, "--"}, paths...)...) == nil {
		return nil
	}
	// Only what cp made goes: nix-store --load-db, running meanwhile, makes store/.links.
	for _, p := range paths {
		if err := removeTree(filepath.Join(store, filepath.Base(p))); err != nil {
			return err
		}
	}
	return run(ctx, "cp", append([]string{"-a", "--reflink=auto", "-t", store, "--"}, paths...)...)
}

// systemStaging is the name pattern of stageSystem's directories.
const systemStaging = ".system.*.partial"

// isSystemStaging reports whether source is the nix directory of a tree stageSystem
// made in dir: the build's own, which stageFiles moves into place instead of copying
// (for a real closure, a hard link per file).
func isSystemStaging(dir, source string) bool {
	parent := filepath.Dir(source)
	ok, _ := filepath.Match(systemStaging, filepath.Base(parent))
	return ok && filepath.Base(source) == "nix" && filepath.Dir(parent) == filepath.Clean(dir)
}

// closureOf returns the store paths of toplevel's closure and their registration (the
// output of nix-store --dump-db): from closureInfo, a directory made by nixpkgs'
// closureInfo (store-paths, registration) when given, as in a Nix build where the store's
// database cannot be read; else the paths from the build machine's Nix database and no
// registration (loadDB reads it from there).
func closureOf(ctx context.Context, toplevel, closureInfo string) ([]string, []byte, error) {
	if closureInfo != "" {
		list, err := os.ReadFile(filepath.Join(closureInfo, "store-paths"))
		if err != nil {
			return nil, nil, fmt.Errorf("--closure-info: %w", err)
		}
		reg, err := os.ReadFile(filepath.Join(closureInfo, "registration"))
		if err != nil {
			return nil, nil, fmt.Errorf("--closure-info: %w", err)
		}
		paths := strings.Fields(string(list))
		for _, p := range paths {
			if p == toplevel {
				return paths, reg, nil
			}
		}
		return nil, nil, fmt.Errorf("--closure-info %s does not hold %s", closureInfo, toplevel)
	}
	out, err := output(ctx, "nix-store", "--query", "--requisites", toplevel)
	if err != nil {
		return nil, nil, fmt.Errorf("--system %s: the closure (pass --closure-info where the Nix database cannot be read): %w", toplevel, err)
	}
	return strings.Fields(string(out)), nil, nil
}

// loadDB registers the closure in a Nix database under root: from reg when it is not
// nil, else from the build machine's database, with nix-store --dump-db piped into
// nix-store --load-db (the two start at once).
func loadDB(ctx context.Context, root, toplevel string, paths []string, reg []byte) error {
	load := []string{"--store", "local?root=" + root, "--load-db"}
	if reg != nil {
		return runInput(ctx, string(reg), "nix-store", load...)
	}
	nixStore, err := toolPath("nix-store")
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	dump := exec.CommandContext(ctx, nixStore, append([]string{"--dump-db"}, paths...)...)
	loader := exec.CommandContext(ctx, nixStore, load...)
	var dumpErr, loadErr limitedBuffer
	dump.Stdout, dump.Stderr = w, &dumpErr
	loader.Stdin, loader.Stderr = r, &loadErr
	err = dump.Start()
	if err == nil {
		if err = loader.Start(); err != nil {
			dump.Process.Kill()
			dump.Wait()
		}
	}
	// The children hold the pipe now: when one ends, the other sees it.
	r.Close()
	w.Close()
	if err != nil {
		return err
	}
	loaded, dumped := loader.Wait(), dump.Wait()
	if dumped != nil {
		return fmt.Errorf("--system %s: the registration: nix-store --dump-db failed (%v): %s", toplevel, dumped, dumpErr.String())
	}
	if loaded != nil {
		return fmt.Errorf("nix-store --load-db failed (%v): %s", loaded, loadErr.String())
	}
	return nil
}
