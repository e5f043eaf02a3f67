// Package facts finds out what the installer needs to know about a target
// (OS, architecture, installer or not, privileges, memory, disks, kexec
// support, container, tools) in one SSH round trip: one POSIX sh script
// prints key=value lines and a few verbatim blocks, parsed here into a
// typed struct. Parsing is separate from running so that recorded outputs
// can be replayed in tests.
package facts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// Runner runs a shell command on the target; *remote.Client and
// *remote.Shell implement it.
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Facts is what the target said about itself.
type Facts struct {
	Kernel        string // uname -s, "Linux" for a supported target
	KernelRelease string // uname -r
	Arch          string // uname -m: x86_64, aarch64, …
	Hostname      string
	BootID        string // changes on every boot: proves a reboot/kexec happened
	OS            OSRelease
	IsNixOS       bool
	IsInstaller   bool // a NixOS installer (VARIANT_ID=installer or the kexec marker)
	KexecMarker   bool // /etc/is_kexec exists (nixos-images kexec installer)

	Privilege remote.Privilege // login user, root/sudo/doas, password needed

	MemTotal     uint64 // bytes
	MemAvailable uint64 // bytes
	SwapTotal    uint64 // bytes

	Disks []Disk // lsblk tree; nil if lsblk is missing

	Kexec          Kexec
	Container      string // "" when not in a container, else docker, lxc, podman, …
	Virtualization string // hypervisor from systemd-detect-virt --vm, "" if none/unknown

	Tools      map[string]string // tool name -> path, for the tools found
	SetsidWait bool              // setsid supports --wait (BusyBox's does not)
	IPv4Route  bool              // a route to the IPv4 internet exists
	IPv6Route  bool              // a route to the IPv6 internet exists
}

// OSRelease is /etc/os-release.
type OSRelease struct {
	ID         string
	IDLike     []string
	Name       string
	PrettyName string
	VersionID  string
	VariantID  string
	BuildID    string
	Fields     map[string]string // every field, unquoted
}

// Kexec is what decides whether the target can be kexec'd into an installer.
type Kexec struct {
	Supported bool   // /sys/kernel/kexec_loaded exists: the kernel has kexec
	Loaded    bool   // a kexec kernel is already loaded
	Binary    string // path of the kexec binary, "" if none (the tarball brings one)
	Lockdown  string // /sys/kernel/security/lockdown selection, e.g. "none", "integrity"
}

// Disk is one lsblk device, with its partitions and holders as Children.
type Disk struct {
	Name        string   `json:"name"`
	KName       string   `json:"kname"`
	Path        string   `json:"path"`
	Size        uint64   `json:"size"`
	Model       string   `json:"model"`
	Serial      string   `json:"serial"`
	Type        string   `json:"type"` // disk, part, loop, rom, crypt, lvm, raid1, …
	FSType      string   `json:"fstype"`
	PTType      string   `json:"pttype"`
	ReadOnly    bool     `json:"ro"`
	Removable   bool     `json:"rm"`
	Mountpoints []string `json:"mountpoints"`
	Children    []Disk   `json:"children"`
}

// Gather runs the fact script once through r and parses its output.
// Afterwards a *remote.Client caller can skip another probe with
// c.SetPrivilege(f.Privilege).
func Gather(ctx context.Context, r Runner) (*Facts, error) {
	var stdout bytes.Buffer
	var stderr strings.Builder
	if err := r.Run(ctx, script, nil, &stdout, &stderr); err != nil {
		return nil, fmt.Errorf("gathering facts: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	f, err := Parse(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gathering facts: %w", err)
	}
	return f, nil
}

// tools are looked for on the target, for the phases that need them.
var tools = []string{
	"nix", "nixos-install", "nixos-facter", "nixos-generate-config",
	"bash", "tar", "cpio", "setsid", "kexec", "curl", "wget", "gzip", "xz", "zstd", "base64",
	"sudo", "doas", "ip", "systemd-detect-virt",
	"lsblk", "blkid", "sfdisk", "sgdisk", "parted", "partx", "wipefs", "udevadm",
	"cryptsetup", "mdadm", "lvm", "zpool", "mkswap",
	"mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkfs.vfat", "mkfs.f2fs",
}

// Tools lists the tools whose paths Facts.Tools reports when present.
func Tools() []string { return slices.Clone(tools) }

// Script returns the POSIX sh fact script. It never fails as a whole:
// missing files and tools just leave facts out. It only reads; it changes
// nothing.
func Script() string { return script }

var script = `export LC_ALL=C
PATH="$PATH:/run/current-system/sw/bin:/usr/local/sbin:/usr/sbin:/sbin"
kv() { printf '%s=%s\n' "$1" "$2"; }
yn() { if "$@" >/dev/null 2>&1; then echo y; else echo n; fi; }
kv kernel "$(uname -s 2>/dev/null)"
kv kernel_release "$(uname -r 2>/dev/null)"
kv arch "$(uname -m 2>/dev/null)"
kv hostname "$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname 2>/dev/null)"
kv boot_id "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
for f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$f" ]; then echo "begin os-release"; cat "$f"; echo; echo "end os-release"; break; fi
done
kv kexec_marker "$(yn test -e /etc/is_kexec)"
echo "begin meminfo"; grep -E '^(MemTotal|MemAvailable|SwapTotal):' /proc/meminfo 2>/dev/null; echo "end meminfo"
kv kexec_supported "$(yn test -e /sys/kernel/kexec_loaded)"
kv kexec_loaded "$(cat /sys/kernel/kexec_loaded 2>/dev/null)"
kv lockdown "$(cat /sys/kernel/security/lockdown 2>/dev/null)"
kv virt_container "$(systemd-detect-virt --container 2>/dev/null)"
kv virt_vm "$(systemd-detect-virt --vm 2>/dev/null)"
kv dockerenv "$(yn test -e /.dockerenv)"
kv containerenv "$(yn test -e /run/.containerenv)"
kv setsid_wait "$(yn setsid --wait true)"
if command -v ip >/dev/null 2>&1; then
  kv ipv4_route "$(yn ip -4 route get 1.1.1.1)"
  kv ipv6_route "$(yn ip -6 route get 2606:4700:4700::1111)"
fi
for t in ` + strings.Join(tools, " ") + `; do
  p=$(command -v "$t" 2>/dev/null) && kv "tool.$t" "$p"
done
echo "begin lsblk"
lsblk --json -b -o NAME,KNAME,PATH,SIZE,MODEL,SERIAL,TYPE,FSTYPE,PTTYPE,RO,RM,MOUNTPOINTS 2>/dev/null ||
  lsblk --json -b -o NAME,KNAME,SIZE,MODEL,SERIAL,TYPE,FSTYPE,PTTYPE,RO,RM,MOUNTPOINT 2>/dev/null
echo "end lsblk"
` + remote.PrivilegeScript

// Parse reads the output of the fact script.
func Parse(out []byte) (*Facts, error) {
	kv, blocks := split(out)
	if kv["kernel"] == "" {
		return nil, fmt.Errorf("the fact script printed no kernel name (output begins %q)", head(out))
	}
	f := &Facts{
		Kernel:        kv["kernel"],
		KernelRelease: kv["kernel_release"],
		Arch:          kv["arch"],
		Hostname:      kv["hostname"],
		BootID:        kv["boot_id"],
		KexecMarker:   kv["kexec_marker"] == "y",
		SetsidWait:    kv["setsid_wait"] == "y",
		IPv4Route:     kv["ipv4_route"] == "y",
		IPv6Route:     kv["ipv6_route"] == "y",
		Tools:         map[string]string{},
	}
	f.OS = parseOSRelease(blocks["os-release"])
	f.IsNixOS = f.OS.ID == "nixos" || slices.Contains(f.OS.IDLike, "nixos")
	f.IsInstaller = f.IsNixOS && (f.OS.VariantID == "installer" || f.KexecMarker)

	priv, err := remote.ParsePrivilege(kv)
	if err != nil {
		return nil, err
	}
	f.Privilege = priv

	mem := parseMeminfo(blocks["meminfo"])
	f.MemTotal, f.MemAvailable, f.SwapTotal = mem["MemTotal"], mem["MemAvailable"], mem["SwapTotal"]

	f.Kexec = Kexec{
		Supported: kv["kexec_supported"] == "y",
		Loaded:    strings.TrimSpace(kv["kexec_loaded"]) == "1",
		Lockdown:  parseLockdown(kv["lockdown"]),
	}
	for k, v := range kv {
		if name, ok := strings.CutPrefix(k, "tool."); ok && v != "" {
			f.Tools[name] = v
		}
	}
	f.Kexec.Binary = f.Tools["kexec"]

	switch c := kv["virt_container"]; {
	case c != "" && c != "none":
		f.Container = c
	case kv["dockerenv"] == "y":
		f.Container = "docker"
	case kv["containerenv"] == "y":
		f.Container = "podman"
	}
	if v := kv["virt_vm"]; v != "" && v != "none" {
		f.Virtualization = v
	}

	if b := bytes.TrimSpace(blocks["lsblk"]); len(b) > 0 {
		disks, err := parseLsblk(b)
		if err != nil {
			return nil, err
		}
		f.Disks = disks
	}
	return f, nil
}

// split separates key=value lines from "begin NAME" … "end NAME" blocks.
func split(out []byte) (map[string]string, map[string][]byte) {
	kv := map[string]string{}
	blocks := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var block string
	var buf bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		if block != "" {
			if line == "end "+block {
				blocks[block] = append([]byte(nil), buf.Bytes()...)
				block = ""
				buf.Reset()
				continue
			}
			buf.WriteString(line + "\n")
			continue
		}
		if name, ok := strings.CutPrefix(line, "begin "); ok && name != "" && !strings.Contains(name, "=") {
			block = name
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && k != "" && !strings.ContainsAny(k, " \t") {
			kv[k] = v
		}
	}
	return kv, blocks
}

func parseOSRelease(b []byte) OSRelease {
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		fields[k] = v
	}
	return OSRelease{
		ID:         fields["ID"],
		IDLike:     strings.Fields(fields["ID_LIKE"]),
		Name:       fields["NAME"],
		PrettyName: fields["PRETTY_NAME"],
		VersionID:  fields["VERSION_ID"],
		VariantID:  fields["VARIANT_ID"],
		BuildID:    fields["BUILD_ID"],
		Fields:     fields,
	}
}

// parseMeminfo returns /proc/meminfo values in bytes.
func parseMeminfo(b []byte) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 2 && f[2] == "kB" {
			n *= 1024
		}
		m[strings.TrimSuffix(f[0], ":")] = n
	}
	return m
}

// parseLockdown picks the selected mode out of "none [integrity] confidentiality".
func parseLockdown(s string) string {
	if i := strings.Index(s, "["); i >= 0 {
		if j := strings.Index(s[i:], "]"); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return strings.TrimSpace(s)
}

// lsblkDevice accepts the JSON of old and new lsblk versions: sizes and
// flags as numbers, strings or booleans; "mountpoint" or "mountpoints".
type lsblkDevice struct {
	Name        string        `json:"name"`
	KName       string        `json:"kname"`
	Path        string        `json:"path"`
	Size        flexUint      `json:"size"`
	Model       *string       `json:"model"`
	Serial      *string       `json:"serial"`
	Type        string        `json:"type"`
	FSType      *string       `json:"fstype"`
	PTType      *string       `json:"pttype"`
	RO          flexBool      `json:"ro"`
	RM          flexBool      `json:"rm"`
	Mountpoint  *string       `json:"mountpoint"`
	Mountpoints []*string     `json:"mountpoints"`
	Children    []lsblkDevice `json:"children"`
}

func parseLsblk(b []byte) ([]Disk, error) {
	var doc struct {
		BlockDevices []lsblkDevice `json:"blockdevices"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parsing lsblk --json output: %w (begins %q)", err, head(b))
	}
	return convert(doc.BlockDevices), nil
}

func convert(ds []lsblkDevice) []Disk {
	var out []Disk
	for _, d := range ds {
		disk := Disk{
			Name: d.Name, KName: d.KName, Path: d.Path, Size: uint64(d.Size), Type: d.Type,
			Model: str(d.Model), Serial: str(d.Serial), FSType: str(d.FSType), PTType: str(d.PTType),
			ReadOnly: bool(d.RO), Removable: bool(d.RM), Children: convert(d.Children),
		}
		if disk.KName == "" {
			disk.KName = d.Name
		}
		if disk.Path == "" {
			disk.Path = "/dev/" + disk.KName
		}
		for _, m := range append(d.Mountpoints, d.Mountpoint) {
			if m != nil && *m != "" && !slices.Contains(disk.Mountpoints, *m) {
				disk.Mountpoints = append(disk.Mountpoints, *m)
			}
		}
		out = append(out, disk)
	}
	return out
}

type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("size %s is not a byte count (lsblk must run with -b)", b)
	}
	*f = flexUint(n)
	return nil
}

type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*f = true
	case "false", "0", "null", "":
		*f = false
	default:
		return fmt.Errorf("flag %s is not a boolean", b)
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func head(b []byte) string {
	if len(b) > 120 {
		b = b[:120]
	}
	return string(b)
}

// IPv6Only reports a target that can reach the IPv6 internet but not the
// IPv4 one (nixos-anywhere then rewrites GitHub URLs to an IPv6 proxy).
func (f *Facts) IPv6Only() bool { return f.IPv6Route && !f.IPv4Route }
