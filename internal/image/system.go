package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	loadErr := loadDB(ctx, root, reg)
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

// closureOf returns the store paths of toplevel's closure and their registration (what
// nix-store --dump-db writes, which nix-store --load-db reads): from closureInfo, a
// directory made by nixpkgs' closureInfo (store-paths, registration) when given, as in a
// Nix build where the store's database cannot be read; else from the build machine's
// Nix database, with one nix path-info run (the query of the closure and its dump are
// one process start, not two).
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
	nix, err := toolPath("nix")
	if err != nil {
		return nil, nil, fmt.Errorf("--system %s: the closure: %w", toplevel, err)
	}
	cmd := exec.CommandContext(ctx, nix, "path-info", "--recursive", "--json", toplevel)
	// path-info is behind nix-command from Nix 2.4 on; an older Nix warns of the
	// unknown setting and runs.
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+os.Getenv("NIX_CONFIG")+"\nextra-experimental-features = nix-command")
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("--system %s: the closure (pass --closure-info where the Nix database cannot be read): nix path-info failed (%v): %s", toplevel, err, stderr.String())
	}
	paths, reg, err := registration(out)
	if err != nil {
		return nil, nil, fmt.Errorf("--system %s: the closure: nix path-info --json: %w", toplevel, err)
	}
	return paths, reg, nil
}

// pathInfo is what nix path-info --json says of a store path.
type pathInfo struct {
	Path       string   `json:"path"`
	NarHash    string   `json:"narHash"`
	NarSize    int64    `json:"narSize"`
	Deriver    string   `json:"deriver"`
	References []string `json:"references"`
}

// registration reads nix path-info --json output (a list before Nix 2.19, an object by
// path since) and writes it as nix-store --dump-db does: path, NAR hash, NAR size,
// deriver, number of references, references, a line each. --load-db takes the hash in
// any of Nix's notations.
func registration(out []byte) ([]string, []byte, error) {
	var infos []pathInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		var byPath map[string]*pathInfo
		if json.Unmarshal(out, &byPath) != nil {
			return nil, nil, err
		}
		for path, info := range byPath {
			if info == nil {
				return nil, nil, fmt.Errorf("%s is not valid", path)
			}
			info.Path = path
			infos = append(infos, *info)
		}
		// In path order, as the list was: the database's rows come out the same each run.
		slices.SortFunc(infos, func(a, b pathInfo) int { return strings.Compare(a.Path, b.Path) })
	}
	var paths []string
	var reg bytes.Buffer
	for _, info := range infos {
		if info.NarHash == "" {
			return nil, nil, fmt.Errorf("%s has no NAR hash", info.Path)
		}
		paths = append(paths, storePath(info.Path))
		fmt.Fprintf(&reg, "%s\n%s\n%d\n%s\n%d\n", storePath(info.Path), info.NarHash, info.NarSize, info.Deriver, len(info.References))
		for _, r := range info.References {
			fmt.Fprintln(&reg, storePath(r))
		}
	}
	return paths, reg.Bytes(), nil
}

// storePath gives a store path its directory when nix path-info wrote its base name only.
func storePath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/nix/store/" + p
}

// loadDB registers the closure in a Nix database under root (nix-store --load-db of reg).
func loadDB(ctx context.Context, root string, reg []byte) error {
	return runInput(ctx, string(reg), "nix-store", "--store", "local?root="+root, "--load-db")
}
