package codegen

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mvdan.cc/sh/v3/syntax"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

// richLayout uses every node type and most options, with hooks, so that a hostile value
// in any of its strings reaches a command.
const richLayout = `{
  "disk": {
    "main": {"device": "/dev/sda", "preCreateHook": "echo pre", "postMountHook": "echo mounted", "content": {"type": "gpt", "partitions": {
      "ESP": {"size": "500M", "type": "EF00", "attributes": [0, 60], "hybrid": {"mbrPartitionType": "0x0c", "mbrBootableFlag": true},
              "content": {"type": "filesystem", "format": "vfat", "extraArgs": ["-n", "ESP"], "mountOptions": ["umask=0077"], "mountpoint": "/boot", "postCreateHook": "echo made"}},
      "swap": {"size": "1G", "uuid": "809b3a2b-828a-4730-95e1-75b6343e415a", "content": {"type": "swap", "extraArgs": ["-L", "swap"], "discardPolicy": "pages", "priority": 5, "mountOptions": ["nofail"]}},
      "crypt": {"size": "10G", "content": {"type": "luks", "name": "crypted", "settings": {"keyFile": "/tmp/secret.key", "keyFileSize": 64, "allowDiscards": true, "bypassWorkqueues": true},
              "additionalKeyFiles": ["/tmp/extra.key"], "extraFormatArgs": ["--pbkdf argon2id"], "extraOpenArgs": ["--timeout 10"],
              "content": {"type": "lvm_pv", "vg": "pool"}}},
      "pw": {"size": "1G", "content": {"type": "luks", "name": "pwcrypt", "passwordFile": "/tmp/pw", "content": {"type": "btrfs", "extraArgs": ["-f", "-L root"], "mountpoint": "/top", "mountOptions": ["noatime"],
              "swap": {"swapfile": {"size": "16M"}},
              "subvolumes": {"/home": {"mountpoint": "/home", "mountOptions": ["compress=zstd"], "extraArgs": ["-p"]}, "/swap": {"mountpoint": "/swap", "swap": {"rel/path": {"size": "8M", "path": "sw"}}}}}}},
      "md": {"size": "1G", "content": {"type": "mdraid", "name": "raid"}},
      "zfs": {"size": "1G", "content": {"type": "zfs", "pool": "tank"}},
      "bc": {"size": "100%", "content": {"type": "bcachefs", "filesystem": "bfs", "label": "group.a", "extraFormatArgs": ["--discard"]}}
    }}},
    "second": {"device": "/dev/sdb", "content": {"type": "table", "format": "msdos", "partitions": [
      {"name": "first", "start": "1MiB", "end": "1GiB", "fs-type": "ext4", "bootable": true, "flags": ["esp"], "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/data"}},
      {"part-type": "extended", "start": "1GiB", "end": "100%"},
      {"part-type": "logical", "start": "1025MiB", "end": "2GiB", "content": {"type": "mdraid", "name": "raid"}},
      {"part-type": "logical", "start": "2GiB", "end": "3GiB", "content": {"type": "zfs", "pool": "tank"}},
      {"part-type": "logical", "start": "3GiB", "end": "100%", "content": {"type": "bcachefs", "filesystem": "bfs"}}
    ]}}
  },
  "mdadm": {"raid": {"level": 1, "metadata": "1.0", "extraArgs": ["--assume-clean"], "content": {"type": "gpt", "partitions": {
    "p": {"size": "100%", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/raid"}}}}}},
  "lvm_vg": {"pool": {"lvs": {
    "thin": {"size": "100M", "lvm_type": "thin-pool"},
    "tv": {"size": "1G", "lvm_type": "thinlv", "pool": "thin", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/thin"}},
    "mirror": {"size": "10M", "lvm_type": "raid1", "extraArgs": ["--nosync"], "content": {"type": "swap"}},
    "rest": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/rest", "preMountHook": "echo before"}}
  }}},
  "zpool": {"tank": {"mode": "mirror", "options": {"ashift": "12"}, "rootFsOptions": {"compression": "zstd", "canmount": "off"}, "mountpoint": "/tank",
    "datasets": {
      "fs": {"type": "zfs_fs", "mountpoint": "/tank/fs", "options": {"keylocation": "file:///tmp/k", "encryption": "on", "keyformat": "raw"}},
      "vol": {"type": "zfs_volume", "size": "10M", "options": {"volblocksize": "4096"}, "extraArgs": ["-s"], "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/vol"}}
    }}},
  "bcachefs_filesystems": {"bfs": {"extraFormatArgs": ["--compression=lz4"], "passwordFile": "BPW", "mountpoint": "/bfs",
    "subvolumes": {"sub/a": {"mountpoint": "/bfs-a", "mountOptions": ["verbose"]}}}},
  "nodev": {"/tmp": {"fsType": "tmpfs", "mountOptions": ["size=1G"]}, "/bind": {"fsType": "none", "device": "/persist", "mountOptions": ["bind"]}}
}`

// stubTools are the commands the generated code (not the runtime, whose device functions
// the harness replaces) may run. Each becomes a bash function, which receives exactly the
// words an external command would: it records them and succeeds, except probes, which
// fail when creating or mounting (so that the creating branch runs) and succeed when
// unmounting (so that the unmounting branch runs).
var stubTools = []string{
	"mkfs.vfat", "mkfs.ext4", "mkfs.xfs", "mkswap", "swapon", "swapoff", "cryptsetup", "pvcreate", "vgcreate",
	"vgs", "lvs", "lvcreate", "vgchange", "modprobe", "mdadm", "wipefs", "zpool", "zfs", "btrfs", "mkfs.btrfs",
	"mount", "umount", "bcachefs", "sgdisk", "sfdisk", "findmnt", "cat",
}

const stubTool = `
disko_stub_tool() {
  disko_stub_rec "$@"
  case "$1 ${2:-} ${3:-}" in
  "cryptsetup status "* | "cryptsetup isLuks "* | "cryptsetup open --test-passphrase"* | "vgs "* | "lvs "* | \
    "zpool list "* | "zpool import -N"* | "zfs get "* | "btrfs subvolume show"* | "findmnt "*)
    [ "$STUB_MODE" = unmount ]
    return
    ;;
  "cat "*) printf secret ;;
  esac
}
`

// stubRuntime replaces the runtime functions that touch devices: they record their
// arguments (the GPT names decoded, so that the check sees the value itself) and answer
// as for a blank disk.
const stubRuntime = `
disko_stub_n=0
disko_stub_rec() { disko_stub_n=$((disko_stub_n + 1)); printf '%s\0' "$@" >"$STUB_LOG/fn.$BASHPID.$disko_stub_n"; }
disko_dev() { disko_stub_rec disko_dev "${@:2}"; printf -v "$1" '%s' /dev/stub; }
disko_dev_now() { disko_stub_rec disko_dev_now "${@:2}"; printf -v "$1" '%s' /dev/stub; }
disko_want() { disko_stub_rec disko_want "$@"; }
disko_gpt() {
  local spec n start end align type uuid attrs b64 name
  local -a args=(disko_gpt "$1" "$2")
  for spec in "${@:3}"; do
    read -r n start end align type uuid attrs b64 name <<<"$spec"
    args+=("$(printf '%s' "$b64" | base64 -d)")
  done
  disko_stub_rec "${args[@]}"
  disko_fresh=1
}
disko_table() { disko_stub_rec disko_table "$@"; }
disko_part() { disko_stub_rec disko_part "${@:2}"; printf -v "$1" '%s' /dev/stubpart; }
disko_pin() { :; }
disko_fresh_parts() { :; }
disko_unpin() { :; }
disko_mounted() { disko_stub_rec disko_mounted "$@"; [ "$STUB_MODE" = unmount ]; }
disko_swap_active() { disko_stub_rec disko_swap_active "$@"; [ "$STUB_MODE" = unmount ]; }
disko_md_members() { disko_stub_rec disko_md_members "$@"; }
disko_zfs_members() { disko_stub_rec disko_zfs_members "$@"; }
disko_bcachefs_exists() { disko_stub_rec disko_bcachefs_exists "$@"; return 1; }
disko_confirm() { disko_stub_rec disko_confirm "$@"; }
disko_destroy_disk() { disko_stub_rec disko_destroy_disk "$@"; }
disko_password() { printf -v "$2" '%s' pw; }
disko_hook() { disko_stub_rec disko_hook "$@"; }
disko_link() { disko_stub_rec disko_link "${@:2}"; printf -v "$1" '%s' "$2"; }
disko_need_tools() { :; }
disko_need_disk() { :; }
`

// stubEnv is a directory of the harmless real tools the scripts use on their own
// temporary files, to be the whole PATH of a script: every other command is a stub.
type stubEnv struct {
	path      string
	realHooks bool // run hooks (disko_hook) instead of recording them
}

func newStubEnv(t testing.TB) *stubEnv {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"mkdir", "mktemp", "rmdir", "dirname", "base64"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed", tool)
		}
		if err := os.Symlink(real, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return &stubEnv{path: dir}
}

// call is one recorded command or runtime function call.
type call []string

// run runs a script with the stubs and returns what was called.
func (e *stubEnv) run(t testing.TB, script []byte, mode string, args ...string) ([]call, string, error) {
	t.Helper()
	var stubs strings.Builder
	fns := stubRuntime
	if e.realHooks {
		fns = strings.Replace(fns, "disko_hook() { disko_stub_rec disko_hook \"$@\"; }\n", "", 1)
	}
	stubs.WriteString(fns + stubTool)
	for _, tool := range stubTools {
		stubs.WriteString(tool + "() { disko_stub_tool " + tool + " \"$@\"; }\n")
	}
	script = bytes.Replace(script, []byte(runtimeEnd), []byte(stubs.String()+runtimeEnd), 1)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	cmd := exec.Command(bash, append([]string{"-s", "--"}, args...)...)
	cmd.Stdin = bytes.NewReader(script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + e.path, "STUB_LOG=" + logDir, "STUB_MODE=" + mode, "TMPDIR=" + dir, "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	files, _ := os.ReadDir(logDir)
	var calls []call
	for _, f := range files {
		data, _ := os.ReadFile(filepath.Join(logDir, f.Name()))
		calls = append(calls, strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"))
	}
	return calls, string(out), err
}

// stringSite is one string in a layout: a field, a list element, a map value or a map key.
type stringSite struct {
	where string // Go path, for messages
	split bool   // a list disko word-splits (toString)
	hook  bool   // shell code by definition
	value string // what it holds (a struct field's string; empty for the other sites)
	set   func(string)
}

// splitFields are the lists whose elements disko joins and splits at whitespace. A
// bcachefs member's extraFormatArgs is not one: disko passes each element whole.
var splitFields = map[string]bool{
	"Swap.ExtraArgs": true, "BTRFS.ExtraArgs": true, "Subvolume.ExtraArgs": true, "LUKS.ExtraFormatArgs": true,
	"LUKS.ExtraOpenArgs": true, "LV.ExtraArgs": true, "BcachefsFilesystem.ExtraFormatArgs": true,
}

// stringSites lists every string of d by walking the model by reflection, in a stable
// order (so that site i of a fresh copy is the same string).
func stringSites(d *config.Devices) []stringSite {
	var sites []stringSite
	var walk func(v reflect.Value, where string, split, hook bool)
	walk = func(v reflect.Value, where string, split, hook bool) {
		switch v.Kind() {
		case reflect.String:
			if v.CanSet() {
				sites = append(sites, stringSite{where: where, split: split, hook: hook, value: v.String(), set: v.SetString})
			}
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), where, split, hook)
			}
		case reflect.Interface:
			if v.IsNil() {
				return
			}
			if _, ok := v.Interface().(string); ok {
				sites = append(sites, stringSite{where: where, set: func(n string) { v.Set(reflect.ValueOf(n)) }})
				return
			}
			walk(v.Elem(), where, split, hook)
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", where, i), split, hook)
			}
		case reflect.Map:
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				m, key := v, k
				sites = append(sites, stringSite{where: where + "{key " + k.String() + "}", set: func(n string) {
					val := m.MapIndex(key)
					m.SetMapIndex(key, reflect.Value{})
					m.SetMapIndex(reflect.ValueOf(n).Convert(key.Type()), val)
				}})
				elem := v.MapIndex(k)
				if elem.Kind() == reflect.String {
					sites = append(sites, stringSite{where: where + "[" + k.String() + "]", set: func(n string) {
						m.SetMapIndex(key, reflect.ValueOf(n).Convert(elem.Type()))
					}})
					continue
				}
				if elem.Kind() == reflect.Interface && !elem.IsNil() {
					if _, ok := elem.Interface().(string); ok {
						sites = append(sites, stringSite{where: where + "[" + k.String() + "]", set: func(n string) {
							m.SetMapIndex(key, reflect.ValueOf(n))
						}})
						continue
					}
				}
				walk(elem, where+"["+k.String()+"]", split, hook)
			}
		case reflect.Struct:
			t := v.Type()
			for i := range v.NumField() {
				f := t.Field(i)
				walk(v.Field(i), where+"."+f.Name, splitFields[t.Name()+"."+f.Name], hook || f.Type == reflect.TypeFor[config.Hooks]())
			}
		}
	}
	walk(reflect.ValueOf(d), "Devices", false, false)
	return sites
}

// TestHostileStrings puts a hostile value into every string of a rich layout in turn
// (values, list elements, map keys such as disk, partition and dataset names, and hooks)
// and checks every generated script: it parses (mvdan.cc/sh and bash -n), and run against
// recording stub tools, nothing in the value is executed (no file appears) and the value
// reaches every command that gets it as one argument, unchanged (or, for the lists disko
// splits at whitespace, as those words). Values that validation would reject are
// included: Generate either refuses them with an error naming the option path, or writes
// safe scripts anyway.
func TestHostileStrings(t *testing.T) {
	env := newStubEnv(t)
	// bcachefs reads its passphrase file through a redirection, which needs the file.
	bpw := filepath.Join(t.TempDir(), "bpw")
	if err := os.WriteFile(bpw, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	layoutJSON := strings.Replace(richLayout, "BPW", bpw, 1)
	base := func() *config.Devices {
		d, err := config.Load([]byte(layoutJSON), config.LoadOptions{})
		if err != nil {
			t.Fatalf("the rich layout does not load: %v", err)
		}
		return d
	}
	// The unchanged layout runs every script to the end under the stubs: otherwise a
	// missing stub would hide most of what the mutations should exercise.
	s, err := Generate(base(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range scriptRuns(s) {
		if _, out, err := env.run(t, run.script, run.mode, run.args...); err != nil {
			t.Fatalf("the unchanged layout's %s fails under the stubs: %v\n%s", run.name, err, out)
		}
	}

	pwned := filepath.Join(t.TempDir(), "pwned")
	hostile := "HOSTILE7 it's \"q\" $(touch " + pwned + ") `touch " + pwned + "` ;|&*?[a]{b,c}~ \\ ü€\nnext -rf"
	n := len(stringSites(base()))
	var seen sync.Map // sites whose value reached a command
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*goruntime.NumCPU())
	var failures sync.Map
	step := 1
	if testing.Short() {
		step = 10 // every tenth site with -short: the full sweep takes about a minute
	}
	for i := 0; i < n; i += step {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			d := base()
			site := stringSites(d)[i]
			site.set(hostile)
			if problems := checkHostile(t, env, d, site, hostile, pwned, &seen, i); len(problems) > 0 {
				failures.Store(i, site.where+":\n  "+strings.Join(problems, "\n  "))
			}
		})
	}
	wg.Wait()
	failures.Range(func(_, v any) bool { t.Error(v); return true })
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a hostile value was executed")
	}
	var reached int
	seen.Range(func(_, _ any) bool { reached++; return true })
	t.Logf("%d string sites; the hostile value reached a command from %d of them", n, reached)
	if reached < n/3/step {
		t.Errorf("only %d of %d sites reached a command: the stub harness does not exercise the scripts", reached, n)
	}
}

type scriptRun struct {
	name, mode string
	script     []byte
	args       []string
}

func scriptRuns(s *Scripts) []scriptRun {
	return []scriptRun{
		{"format.sh", "create", s.Format, nil},
		{"mount.sh", "mount", s.Mount, nil},
		{"unmount.sh", "unmount", s.Unmount, nil},
		{"destroy.sh", "unmount", s.Destroy, []string{"--yes-wipe-all-disks"}},
	}
}

func checkHostile(t *testing.T, env *stubEnv, d *config.Devices, site stringSite, hostile, pwned string, seen *sync.Map, i int) []string {
	var problems []string
	s, err := Generate(d, Options{})
	if err != nil {
		if !strings.Contains(err.Error(), config.RootPath) && !strings.Contains(err.Error(), "root mount point") {
			problems = append(problems, "Generate's error does not name an option path: "+err.Error())
		}
		return problems
	}
	for name, script := range s.Files() {
		if _, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(script), name); err != nil {
			problems = append(problems, fmt.Sprintf("%s does not parse: %v", name, err))
		}
		// Bash itself reads the two scripts that hold every generated function (the others
		// hold the same text, fewer of the functions and another last line).
		if name != "destroy-format-mount.sh" && name != "unmount.sh" {
			continue
		}
		if out, err := exec.Command("bash", "-n", "-c", string(script)).CombinedOutput(); err != nil {
			problems = append(problems, fmt.Sprintf("bash -n %s: %v %s", name, err, out))
		}
	}
	if len(problems) > 0 {
		return problems
	}
	fields := strings.Fields(hostile)
	// As given, Go-quoted (messages), Nix-quoted (option paths) or udev-escaped (by-* links).
	forms := []string{hostile, strings.Trim(strconv.Quote(hostile), `"`), strings.Trim(nixlit.String(hostile), `"`), config.UdevEscape(hostile)}
	for _, run := range scriptRuns(s) {
		if !bytes.Contains(run.script, []byte("HOSTILE7")) {
			continue
		}
		calls, _, _ := env.run(t, run.script, run.mode, run.args...)
		for _, c := range calls {
			for j, arg := range c {
				if !strings.Contains(arg, "HOSTILE7") {
					continue
				}
				seen.Store(i, true)
				ok := slices.ContainsFunc(forms, func(f string) bool { return strings.Contains(arg, f) })
				if !ok && site.split && j+len(fields) <= len(c) && slices.Equal(c[j:j+len(fields)], fields) {
					ok = true
				}
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: %s got the value changed: argument %d is %q", run.name, c[0], j, arg))
				}
			}
		}
	}
	return problems
}
