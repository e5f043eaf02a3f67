package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
)

// corpusDir holds disko's example layouts; fakeLib is internal/eval's stand-in for
// nixpkgs' lib.
const (
	corpusDir = "../../../shared/corpus/disko-examples"
	fakeLib   = "../eval/testdata/fakelib"
)

// everyFilesystem has every filesystem type the builder makes, with labels and UUIDs
// fixed through extraArgs (as users fix them), a partition GUID and attribute bits, a
// hybrid MBR, and an MBR disk with a logical partition.
const everyFilesystem = `{"disk": {
  "a": {"device": "/dev/sda", "imageSize": "1200M", "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "64M", "type": "EF00", "hybrid": {"mbrPartitionType": "0x0c", "mbrBootableFlag": true},
      "content": {"type": "filesystem", "format": "vfat", "extraArgs": ["-n", "ESP", "-i", "1234ABCD"], "mountpoint": "/boot"}},
    "swap": {"size": "32M", "uuid": "0B7C1A4E-7E5A-4D7B-9F1C-2D3E4F506172", "attributes": [0, 63],
      "content": {"type": "swap", "extraArgs": ["-L", "swp", "-U", "5a3b8b0e-41d5-4a35-8d8e-1b0f5f2c9a11"]}},
    "data": {"size": "320M", "content": {"type": "filesystem", "format": "xfs", "extraArgs": ["-L", "data", "-m", "uuid=7d1e7e62-9b7c-4c1f-8a3e-5f8e2a6b1c3d"], "mountpoint": "/data"}},
    "bt": {"size": "200M", "content": {"type": "btrfs", "extraArgs": ["-f", "-L", "bt", "-U", "3c9d5e2a-6f1b-4e8c-9a7d-2b4c6e8f0a1b"], "mountpoint": "/bt"}},
    "fs2": {"size": "100M", "content": {"type": "filesystem", "format": "f2fs", "extraArgs": ["-l", "f2", "-U", "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"], "mountpoint": "/f2"}},
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "extraArgs": ["-L", "root", "-U", "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"], "mountpoint": "/"}}
  }}},
  "b": {"device": "/dev/sdb", "imageSize": "300M", "content": {"type": "table", "format": "msdos", "partitions": [
    {"start": "1MiB", "end": "100MiB", "bootable": true, "content": {"type": "filesystem", "format": "ext4", "extraArgs": ["-L", "mbr1", "-U", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]}},
    {"part-type": "extended", "start": "100MiB", "end": "100%"},
    {"part-type": "logical", "start": "101MiB", "end": "100%", "content": {"type": "filesystem", "format": "vfat", "extraArgs": ["-n", "LOGICAL", "-i", "0BADCAFE"]}}
  ]}}
}}`

// TestImagesMatchFormatScript builds, as user nobody, the image of every corpus layout
// that needs no kernel support (and of everyFilesystem), runs the real format script of
// the same layout on loop devices of the same sizes, and compares the two: partition
// tables (the GPT's entries, sfdisk --json of an MBR, and the MBR's entries, which hold
// a hybrid MBR, without their cylinder/head/sector fields) and what blkid
// finds at every partition's offset (type, label, version; the UUID too where the layout
// fixes it, else only that there is one). Run it under flock /tmp/heavy.lock.
func TestImagesMatchFormatScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the loop devices the format script runs on (the images are built as nobody)")
	}
	for _, tool := range []string{"losetup", "blkid", "sfdisk", "parted", "sgdisk", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkfs.vfat", "mkfs.f2fs", "mkswap", "jq", "nix-instantiate"} {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
	layouts := map[string]string{"every-filesystem": everyFilesystem}
	fixed := map[string]bool{"every-filesystem": true}
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.nix"))
	if len(files) == 0 {
		t.Fatalf("no layouts in %s: the shared corpus is missing", corpusDir)
	}
	os.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	lib, _ := filepath.Abs(fakeLib)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".nix")
		raw, err := (&eval.Evaluator{}).Devices(context.Background(), eval.Source{Path: f, Nixpkgs: lib})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		d := load(t, string(raw))
		if _, vm, err := plan(d, nil); err != nil {
			t.Logf("%s: not built: %v", name, firstLine(err))
			continue
		} else if len(vm) > 0 {
			t.Logf("%s: not built without the kernel: %s", name, vm[0])
			continue
		}
		layouts[name] = string(raw)
	}
	for _, name := range slices.Sorted(maps.Keys(layouts)) {
		t.Run(name, func(t *testing.T) { compareWithFormatScript(t, layouts[name], fixed[name]) })
	}
}

func firstLine(err error) string {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) > 1 {
		return strings.TrimSpace(lines[1])
	}
	return lines[0]
}

func compareWithFormatScript(t *testing.T, layout string, fixedUUIDs bool) {
	out := sharedTempDir(t)
	res := helper(t, asNobody(t), nil, helperJob{Layout: layout, Out: out})
	if res.Err != "" {
		t.Fatalf("building the images as nobody: %s", res.Err)
	}
	d := load(t, layout)
	disks, _, err := plan(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same disks as loop devices, formatted by the format script.
	devices := map[string]string{}
	backing := map[string]string{}
	for _, disk := range disks {
		file := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(file, disk.size); err != nil {
			t.Fatal(err)
		}
		dev, err := exec.Command("losetup", "--find", "--show", "--partscan", file).Output()
		if err != nil {
			t.Fatalf("losetup: %v", err)
		}
		loop := strings.TrimSpace(string(dev))
		t.Cleanup(func() { exec.Command("losetup", "--detach", loop).Run() })
		devices[disk.name], backing[disk.name] = loop, file
	}
	formatted, err := config.Load([]byte(layout), config.LoadOptions{DiskDevices: devices})
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := codegen.Generate(formatted, codegen.Options{RootMountpoint: "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "format.sh")
	if err := os.WriteFile(script, scripts.Format, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--mount", "--propagation", "private", "bash", script).CombinedOutput(); err != nil {
		t.Fatalf("format script: %v\n%s", err, out)
	}
	for _, disk := range disks {
		exec.Command("blockdev", "--flushbufs", devices[disk.name]).Run()
		img := filepath.Join(out, disk.imageName+".raw")
		want, got := describe(t, backing[disk.name], disk, fixedUUIDs), describe(t, img, disk, fixedUUIDs)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("disk %s differs\nformat script: %s\nimage:         %s", disk.name, jsonText(want), jsonText(got))
		} else {
			t.Logf("disk %s: %s", disk.name, jsonText(got))
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// diskFacts is what must be the same in an image and on a formatted disk.
type diskFacts struct {
	Table      map[string]any
	MBREntries string
	Volumes    map[string]map[string]string
}

// describe reads the table of a disk (image or loop device backing file) and probes
// every partition with blkid at its offset. Random values are replaced by "set": the
// GPT's disk GUID, partition GUIDs the layout does not give, filesystem UUIDs unless
// fixedUUIDs.
func describe(t *testing.T, file string, disk *diskPlan, fixedUUIDs bool) diskFacts {
	t.Helper()
	facts := diskFacts{Volumes: map[string]map[string]string{}}
	regions := map[int]region{0: {0, disk.size}}
	if g, ok := disk.content.(*config.GPT); ok {
		// sfdisk reads a hybrid MBR instead of the GPT: read the GPT itself.
		given := map[string]bool{}
		for _, p := range g.Partitions {
			given[strings.ToUpper(p.UUID)] = p.UUID != ""
		}
		facts.Table = map[string]any{"partitions": readGPT(t, file, given)}
		regions = map[int]region{}
		for _, p := range facts.Table["partitions"].([]gptEntry) {
			regions[p.Number] = region{p.First * 512, (p.Last - p.First + 1) * 512}
		}
	}
	if _, ok := disk.content.(*config.Table); ok {
		out, err := exec.Command("sfdisk", "--json", file).Output()
		if err != nil {
			t.Fatalf("sfdisk --json %s: %v", file, err)
		}
		var doc struct{ PartitionTable map[string]any }
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		table := doc.PartitionTable
		delete(table, "device")
		parts, _ := table["partitions"].([]any)
		for _, p := range parts {
			p := p.(map[string]any)
			p["node"] = trailingNumber.FindString(p["node"].(string))
			if _, ok := p["uuid"]; ok {
				p["uuid"] = "set"
			}
		}
		facts.Table = table
		if regions, err = partitionRegions(context.Background(), file); err != nil {
			t.Fatal(err)
		}
	}
	if facts.Table != nil {
		mbr := make([]byte, 66)
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.ReadAt(mbr, 446); err != nil {
			t.Fatal(err)
		}
		// Cylinder/head/sector fields depend on the geometry parted assumes for the
		// device (a loop device and a file differ); booting uses the LBA fields.
		for e := 0; e < 4; e++ {
			for _, i := range []int{1, 2, 3, 5, 6, 7} {
				mbr[e*16+i] = 0
			}
		}
		facts.MBREntries = fmt.Sprintf("%x", mbr)
	}
	for n, r := range regions {
		out, _ := exec.Command("blkid", "-p", "-o", "export", "-O", strconv.FormatInt(r.offset, 10), "-S", strconv.FormatInt(r.size, 10), file).Output()
		vals := map[string]string{}
		for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok || k == "DEVNAME" || k == "PART_ENTRY_SCHEME" {
				continue
			}
			// UUID_SUB (btrfs's device UUID) is random even when the layout fixes the UUID.
			if k == "UUID_SUB" || k == "UUID" && !fixedUUIDs {
				v = "set"
			}
			vals[k] = v
		}
		facts.Volumes[strconv.Itoa(n)] = vals
	}
	return facts
}

// gptEntry is a used entry of a GPT.
type gptEntry struct {
	Number      int
	Type, UUID  string
	First, Last int64
	Attrs       uint64
	Name        string
}

// readGPT reads the primary GPT's used entries; partition GUIDs not in given read "set".
func readGPT(t *testing.T, file string, given map[string]bool) []gptEntry {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 512)
	if _, err := f.ReadAt(hdr, 512); err != nil || string(hdr[:8]) != "EFI PART" {
		t.Fatalf("%s: no GPT header (%v)", file, err)
	}
	le := binary.LittleEndian
	start, count, size := int64(le.Uint64(hdr[72:])), int(le.Uint32(hdr[80:])), int(le.Uint32(hdr[84:]))
	buf := make([]byte, count*size)
	if _, err := f.ReadAt(buf, start*512); err != nil {
		t.Fatal(err)
	}
	guid := func(b []byte) string {
		return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16]))
	}
	var out []gptEntry
	for i := range count {
		e := buf[i*size : (i+1)*size]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		var name []uint16
		for j := 56; j+1 < 128; j += 2 {
			if c := le.Uint16(e[j:]); c != 0 {
				name = append(name, c)
			}
		}
		u := guid(e[16:])
		if !given[u] {
			u = "set"
		}
		out = append(out, gptEntry{Number: i + 1, Type: guid(e), UUID: u, First: int64(le.Uint64(e[32:])), Last: int64(le.Uint64(e[40:])),
			Attrs: le.Uint64(e[48:]), Name: string(utf16.Decode(name))})
	}
	return out
}
