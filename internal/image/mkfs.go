package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// mkfs makes the filesystem or swap area of v in file with the command line the format
// script uses (same tool, same extraArgs, so the same labels and UUIDs), and fills it
// from tree when tree is not "".
//
// Filling without mounting: mkfs.ext2/3/4 -d, mkfs.btrfs --rootdir, mcopy into vfat,
// sload.f2fs into f2fs, a protofile for mkfs.xfs -p (see mkfsXFSFilled). Those tools
// record the owners the files have on the build machine, so they run in a user
// namespace where the builder is root (the protofile says root itself): the files are
// owned by root in the image, as a copy by root would leave them.
func mkfs(ctx context.Context, v volume, file, tree string) error {
	switch n := v.node.(type) {
	case *config.Swap:
		return run(ctx, "mkswap", append(splitWords(n.ExtraArgs), file)...)
	case *config.BTRFS:
		args := append([]string{file}, splitWords(n.ExtraArgs)...)
		if tree != "" {
			return runAsRoot(ctx, "mkfs.btrfs", append([]string{"--rootdir", tree}, args...)...)
		}
		return run(ctx, "mkfs.btrfs", args...)
	case *config.Filesystem:
		tool := "mkfs." + n.Format
		args := append(append([]string{}, n.ExtraArgs...), file)
		if tree == "" {
			return run(ctx, tool, args...)
		}
		switch populateMethod(n.Format) {
		case "-d":
			return runAsRoot(ctx, tool, append([]string{"-d", tree}, args...)...)
		case "--rootdir":
			return runAsRoot(ctx, tool, append([]string{"--rootdir", tree}, args...)...)
		case "mcopy":
			if err := run(ctx, tool, args...); err != nil {
				return err
			}
			entries, err := os.ReadDir(tree)
			if err != nil {
				return err
			}
			mcopy := []string{"-s", "-p", "-Q", "-i", file}
			for _, e := range entries {
				mcopy = append(mcopy, filepath.Join(tree, e.Name()))
			}
			if len(entries) == 0 {
				return nil
			}
			return run(ctx, "mcopy", append(mcopy, "::/")...)
		case "protofile":
			return mkfsXFSFilled(ctx, file, tree, n.ExtraArgs)
		case "sload":
			if err := run(ctx, tool, args...); err != nil {
				return err
			}
			return runAsRoot(ctx, "sload.f2fs", "-f", tree, file)
		}
		return fmt.Errorf("files cannot be put into %s without mounting it", n.Format)
	}
	return fmt.Errorf("%s cannot be built into an image", v.node.Kind())
}

// populateMethod is how a filesystem made by mkfs.FORMAT is filled without mounting it,
// or "" when it cannot be.
func populateMethod(format string) string {
	switch format {
	case "ext2", "ext3", "ext4":
		return "-d"
	case "btrfs":
		return "--rootdir"
	case "vfat", "fat", "msdos", "fat12", "fat16", "fat32":
		return "mcopy"
	case "f2fs":
		return "sload"
	case "xfs":
		return "protofile"
	}
	return ""
}

// canPopulate reports whether files can be put into the volume node.
func canPopulate(n config.Node) bool {
	switch n := n.(type) {
	case *config.BTRFS:
		return true
	case *config.Filesystem:
		return populateMethod(n.Format) != ""
	}
	return false
}

// splitWords splits extraArgs at whitespace, as disko does for mkswap and mkfs.btrfs.
func splitWords(list []string) []string {
	return strings.Fields(strings.Join(list, " "))
}

// runAsRoot runs a tool in a new user namespace in which the caller is root, when the
// kernel allows one, so that files the tool reads look owned by root; else directly.
func runAsRoot(ctx context.Context, name string, args ...string) error {
	if os.Geteuid() == 0 || !userNamespaces() {
		return run(ctx, name, args...)
	}
	path, err := toolPath(name)
	if err != nil {
		return err
	}
	return run(ctx, "unshare", append([]string{"--user", "--map-root-user", "--", path}, args...)...)
}

// userNamespaces reports whether this process may make a user namespace.
var userNamespaces = sync.OnceValue(func() bool {
	path, err := toolPath("unshare")
	if err != nil {
		return false
	}
	return exec.Command(path, "--user", "--map-root-user", "--", "true").Run() == nil
})

// debianPackages names the Debian package of each tool, for the message when one is
// missing.
var debianPackages = map[string]string{
	"sfdisk": "fdisk", "parted": "parted", "sgdisk": "gdisk", "qemu-img": "qemu-utils",
	"mkfs.ext2": "e2fsprogs", "mkfs.ext3": "e2fsprogs", "mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs",
	"mkfs.xfs": "xfsprogs", "mkfs.btrfs": "btrfs-progs", "mkfs.vfat": "dosfstools", "mkfs.fat": "dosfstools",
	"mkfs.msdos": "dosfstools", "mcopy": "mtools", "mkfs.f2fs": "f2fs-tools", "sload.f2fs": "f2fs-tools",
	"mkswap": "util-linux", "unshare": "util-linux", "cp": "coreutils", "nix": "nix-bin", "nix-store": "nix-bin",
}

// sbinDirs are searched after PATH.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// toolPath finds a tool on PATH, then in the sbin directories, which an ordinary user's
// PATH often lacks.
func toolPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	msg := fmt.Sprintf("%s is not installed", name)
	if pkg, ok := debianPackages[name]; ok {
		msg += fmt.Sprintf(" (Debian package %s)", pkg)
	}
	return "", fmt.Errorf("%s", msg)
}

// checkTools finds every tool the build needs before anything is written, so that a
// missing one is named up front.
func checkTools(disks []*diskPlan, format string, populated map[string]bool) error {
	need := map[string]bool{}
	for _, d := range disks {
		switch n := d.content.(type) {
		case *config.GPT:
			need["sfdisk"] = true
			for _, p := range n.Partitions {
				if p.Hybrid != nil {
					need["sgdisk"] = true
				}
			}
		case *config.Table:
			need["parted"], need["sfdisk"] = true, true
		}
		for _, v := range d.volumes {
			switch n := v.node.(type) {
			case *config.Swap:
				need["mkswap"] = true
			case *config.BTRFS:
				need["mkfs.btrfs"] = true
			case *config.Filesystem:
				need["mkfs."+n.Format] = true
				if populated[v.path] {
					switch populateMethod(n.Format) {
					case "-d":
						if canFillExt4(n) {
							need["debugfs"] = true
						}
					case "mcopy":
						need["mcopy"] = true
					case "sload":
						need["sload.f2fs"] = true
					}
				}
			}
		}
	}
	if format == "qcow2" {
		need["qemu-img"] = true
	}
	var missing []string
	for tool := range need {
		if _, err := toolPath(tool); err != nil {
			missing = append(missing, err.Error())
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("cannot build the images: %s", strings.Join(missing, "; "))
	}
	return nil
}

// ext4InPlace returns the mke2fs arguments (before the image and the size) that make v's
// ext2/3/4 filesystem directly in the image at r, filled from tree when not "": the
// layout's extraArgs with -E offset=. The image is a new sparse file, so its range is
// zeros already: no discard, and assume_storage_prezeroed (e2fsprogs 1.47) skips writing
// zeroed inode tables and journal. It is not used when extraArgs has its own -E (mke2fs
// keeps only the last one), nor with an older mke2fs.
func ext4InPlace(v volume, r region, tree string) ([]string, bool) {
	n, ok := v.node.(*config.Filesystem)
	if !ok || populateMethod(n.Format) != "-d" || r.offset%512 != 0 || !mke2fsPrezeroed() {
		return nil, false
	}
	for _, a := range n.ExtraArgs {
		if strings.HasPrefix(a, "-E") {
			return nil, false
		}
	}
	args := []string{"-E", "offset=" + strconv.FormatInt(r.offset, 10) + ",nodiscard,assume_storage_prezeroed=1"}
	if tree != "" {
		args = append(args, "-d", tree)
	}
	return append(args, n.ExtraArgs...), true
}

// mke2fsPrezeroed reports whether mke2fs knows -E assume_storage_prezeroed (1.47 and later).
var mke2fsPrezeroed = sync.OnceValue(func() bool {
	path, err := toolPath("mke2fs")
	if err != nil {
		return false
	}
	out, _ := exec.Command(path, "-V").CombinedOutput()
	var major, minor int
	if _, err := fmt.Sscanf(string(out), "mke2fs %d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 1 || major == 1 && minor >= 47
})
