package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// importCases are probe results with stacked devices, what their import must say, and
// the notes it must write. vm-stacked-probe.json is recorded from TestVMStacked's guest
// after its apply (LUKS holding an LVM group, an md RAID1); stacked-probe.json is written
// by hand for what that guest does not hold: a closed LUKS container, thin and RAID LVs,
// an array that is not assembled and one holding a partition table.
var importCases = []struct {
	file         string
	layout, note []string
}{
	{"vm-stacked-probe.json", []string{
		`"crypt":{"type":"8300","size":"600M","start":"133120s","priority":2,"content":{"type":"luks","name":"crypted","initrdUnlock":true,"content":{"type":"lvm_pv","vg":"pool"}}}`,
		`"data":{"size":"64M","content":{"type":"filesystem","format":"ext4","mountOptions":["defaults"],"mountpoint":"/data"}}`,
		`"root":{"size":"200M","content":{"type":"filesystem","format":"ext4","mountOptions":["mb_optimize_scan=0"],"mountpoint":"/"}}`,
		`"r":{"type":"8300","size":"100%","start":"2048s","priority":1,"content":{"type":"mdraid","name":"arr"}}`,
		`"mdadm":{"arr":{"type":"mdadm","level":1,"metadata":"1.2","content":{"type":"filesystem","format":"ext4","mountOptions":["defaults"],"mountpoint":"/srv"}}}`,
	}, nil},
	{"stacked-probe.json", []string{
		`"crypt":{"type":"8300","size":"600M","start":"133120s","priority":2,"content":{"type":"luks","name":"crypted","initrdUnlock":true,"content":{"type":"lvm_pv","vg":"pool"}}}`,
		`"vault":{"type":"8300","size":"64M","start":"1361920s","priority":3,"content":{"type":"luks","name":"luks-7c1d9e3a-2222-4b8e-8f00-1a2b3c4d5e6f","initrdUnlock":true}}`,
		`"root":{"size":"200M","content":{"type":"filesystem","format":"ext4","mountOptions":["noatime"],"mountpoint":"/"}}`,
		`"swap":{"size":"28M","content":{"type":"swap"`,
		`"tp":{"size":"32M","lvm_type":"thin-pool"}`,
		`"vol":{"size":"100M","lvm_type":"thinlv","pool":"tp","content":{"type":"btrfs"`,
		`"mirror":{"size":"8M","lvm_type":"raid1"}`,
		`"mdadm":{"arr":{"type":"mdadm","level":1,"metadata":"1.2","content":{"type":"filesystem","format":"ext4","mountOptions":["noatime"],"mountpoint":"/srv"}},"tab":{"type":"mdadm","level":0,"metadata":"1.0"}}`,
	}, []string{"luks-7c1d9e3a-2222-4b8e-8f00-1a2b3c4d5e6f is closed", "md array off is not assembled", "md array tab holds a partition table gpt"}},
}

// TestImportStacked imports probe results with LUKS, LVM and md: the layout describes
// what was read, notes what was not, loads, and plans empty against the same result.
func TestImportStacked(t *testing.T) {
	for _, c := range importCases {
		t.Run(c.file, func(t *testing.T) {
			s := recordedState(t, c.file)
			layout, notes := s.Layout("/mnt")
			js, err := json.Marshal(layout)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range c.layout {
				if !strings.Contains(string(js), want) {
					t.Errorf("import lacks %s\n%s", want, js)
				}
			}
			if len(notes) != len(c.note) {
				t.Errorf("notes %q, want %d", notes, len(c.note))
			}
			for _, want := range c.note {
				if !strings.Contains(strings.Join(notes, "\n"), want) {
					t.Errorf("no note saying %q in %q", want, notes)
				}
			}
			d, err := config.Load(js, config.LoadOptions{})
			if err != nil {
				t.Fatalf("the imported layout does not load: %v\n%s", err, js)
			}
			if p := Make(d, &s, Options{RootMountpoint: "/mnt"}); len(p.Actions)+len(p.Refused) > 0 {
				t.Errorf("plan of the imported layout is not empty: %+v\n%s", p, js)
			}
		})
	}
}

// recordedState reads a probe result kept in testdata (a guest's or a fixture's).
func recordedState(t *testing.T, file string) probe.State {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var s probe.State
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}
