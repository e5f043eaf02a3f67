package plan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// corpusOnLoop are the corpus layouts whose format scripts run on this machine's loop
// devices (no device mapper, md or ZFS here; vfat is formatted, not mounted).
var corpusOnLoop = []string{
	"btrfs-subvolumes", "f2fs", "gpt-bios-compat", "gpt-unformatted", "hybrid", "hybrid-tmpfs-on-root",
	"legacy-table", "multi-device-no-deps", "simple-efi", "swap", "tmpfs",
}

// TestLoopCorpusRoundTrip formats each corpus layout that runs here onto loop disks, then
// checks that the layout plans empty against them and that the layout import writes for
// them plans empty too.
func TestLoopCorpusRoundTrip(t *testing.T) {
	requireLoopTools(t)
	for _, tool := range []string{"nix-instantiate", "mkfs.vfat", "mkfs.f2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	ctx := context.Background()
	for _, name := range corpusOnLoop {
		t.Run(name, func(t *testing.T) {
			raw, err := (&eval.Evaluator{}).Devices(ctx, eval.Source{Path: filepath.Join("/work/shared/corpus/disko-examples", name+".nix")})
			if err != nil {
				if _, statErr := os.Stat("/work/shared/corpus/disko-examples"); statErr != nil {
					t.Skipf("the corpus is not here: %v", statErr)
				}
				t.Fatal(err)
			}
			d, err := config.Load(raw, config.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			devs := map[string]string{}
			var names []string
			for n := range d.Disk {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				devs[n] = testtarget.LoopDevice(t, 2<<30)
			}
			t.Cleanup(func() {
				for _, dev := range devs {
					exec.Command("partx", "-d", dev).Run()
				}
			})
			if d, err = config.Load(raw, config.LoadOptions{DiskDevices: devs}); err != nil {
				t.Fatal(err)
			}
			for _, dev := range devs {
				if err := testtarget.RefuseUnlessOwnLoop(dev); err != nil {
					t.Fatal(err)
				}
			}
			ns := newNS(t)
			root := filepath.Join(t.TempDir(), "mnt")
			opts := Options{RootMountpoint: root, Codegen: codegen.Options{RootMountpoint: root}}
			ns.must(t, "bash -s", mustGenerate(t, d, opts).Format)
			if p, err := Probe(ctx, ns, d, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
				t.Fatalf("plan of %s against the disks it formatted is not empty: %v %+v", name, err, p)
			}
			imported := importLayout(t, ctx, ns, d, "/")
			if p, err := Probe(ctx, ns, imported, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
				t.Errorf("plan of the imported layout is not empty: %v %+v", err, p)
			}
		})
	}
}
