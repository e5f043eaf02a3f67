package plan

import (
	"context"
	"errors"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
	"github.com/diskoanywhere/diskoanywhere/internal/vmcycle"
)

// corpusDir holds disko's example layouts; fakeLib is internal/eval's stand-in for
// nixpkgs' lib, which with-lib.nix asks for.
const (
	corpusDir = "/work/shared/corpus/disko-examples"
	fakeLib   = "../eval/testdata/fakelib"
)

// vmCorpusDiskMiB is the size of each of the guest's two disks: the biggest a corpus
// layout that needs the guest asks for (a 500M ESP and room after it).
const vmCorpusDiskMiB = 768

// TestVMCorpusRoundTrip is TestLoopCorpusRoundTrip for the corpus layouts that need
// device mapper or md, which this machine's kernel lacks: each is formatted and mounted
// in one qemu guest, then planned against its own disks (empty), imported, and the
// imported layout planned against the same disks (empty too). Between layouts the
// layout's own unmount and destroy scripts leave the disks blank. ZFS and bcachefs
// layouts are skipped: the guest's Debian kernel has neither.
func TestVMCorpusRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a qemu guest")
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (Debian: nix-bin); it evaluates the layouts")
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	lib, err := filepath.Abs(fakeLib)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.nix"))
	if len(files) == 0 {
		t.Skipf("no corpus layouts in %s", corpusDir)
	}
	var layouts []*vmcycle.Layout
	unsupported := map[string]string{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".nix")
		if slices.Contains(corpusOnLoop, name) {
			continue
		}
		raw, err := (&eval.Evaluator{}).Devices(ctx, eval.Source{Path: f, Nixpkgs: lib})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l, err := vmcycle.Compile(name, raw, vmcycle.Options{FastLUKS: true})
		if errors.Is(err, vmcycle.ErrUnsupported) {
			unsupported[name] = err.Error()
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(l.Disks) > 2 {
			t.Fatalf("%s has %d disks; the guest has 2", name, len(l.Disks))
		}
		layouts = append(layouts, l)
	}
	for _, name := range slices.Sorted(maps.Keys(unsupported)) {
		t.Run(name, func(t *testing.T) { t.Skip(unsupported[name]) })
	}

	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: testvm.LogT(t)})
	if errors.Is(err, testvm.ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	guestFiles, err := vmcycle.GuestFiles(img.KernelRelease, layouts...)
	if err != nil {
		t.Fatal(err)
	}
	disk := testvm.DiskSpec{Size: vmCorpusDiskMiB * testvm.MiB}
	var vm *testvm.VM
	for _, l := range layouts {
		if vm == nil {
			// A fresh guest at first and after a layout that failed (its disks may not be blank).
			vm = testvm.StartT(t, testvm.Options{Image: img, Disks: []testvm.DiskSpec{disk, disk}, ExtraFiles: guestFiles})
		}
		if !t.Run(l.Name, func(t *testing.T) { roundTripInVM(t, ctx, vmRunner{vm}, l) }) {
			vm = nil
		}
	}
}

// roundTripInVM formats and mounts l on the guest's blank disks, checks that l and
// the layout import writes for them both plan empty and that the import mounts what l
// mounts, then unmounts and destroys l and checks that the disks are blank again.
func roundTripInVM(t *testing.T, ctx context.Context, r vmRunner, l *vmcycle.Layout) {
	opts := Options{RootMountpoint: vmcycle.Root, Codegen: codegen.Options{RootMountpoint: vmcycle.Root, PathDirs: vmcycle.ToolDir}}
	run := func(mode string, script []byte, args ...string) {
		t.Helper()
		if _, stderr, err := r.vm.RunScript(ctx, script, args...); err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, vmcycle.Tail(string(stderr), 30))
		}
	}
	run("format,mount", l.Scripts.FormatMount)
	p, err := Probe(ctx, r, l.Devices, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Actions)+len(p.Refused) > 0 {
		t.Fatalf("plan of %s against the disks it formatted is not empty: %+v", l.Name, p)
	}
	imported, err := config.Load(importJSON(t, ctx, r, l.Devices, vmcycle.Root), config.LoadOptions{})
	if err != nil {
		t.Fatalf("the imported layout does not load: %v", err)
	}
	if got, want := mountpoints(t, imported), mountpoints(t, l.Devices); !slices.Equal(got, want) {
		t.Errorf("the imported layout mounts %q, want %q", got, want)
	}
	if p, err := Probe(ctx, r, imported, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of the imported layout is not empty: %v %+v\nmounts:\n%s", err, p, r.must(t, ctx, "findmnt -rno TARGET,SOURCE,FSROOT,OPTIONS"))
	}
	run("unmount", l.Scripts.Unmount)
	run("destroy", l.Scripts.Destroy, "--yes-wipe-all-disks")
	blank := r.must(t, ctx, "wipefs --no-act --noheadings /dev/vda /dev/vdb; ls -d /sys/class/block/vd[ab]/vd[ab]* 2>/dev/null || :")
	if strings.TrimSpace(blank) != "" {
		t.Fatalf("after destroy the disks are not blank:\n%s", blank)
	}
}

// mountpoints are the mount points of the NixOS configuration d implies, sorted.
func mountpoints(t *testing.T, d *config.Devices) []string {
	t.Helper()
	c, err := nixos.Config(d)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(c["fileSystems"].(map[string]any)))
}
