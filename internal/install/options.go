package install

import (
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// Phase is one resumable step of an install, named as nixos-anywhere names it.
type Phase string

// The phases, in the order they run.
const (
	PhaseKexec   Phase = "kexec"
	PhaseDisko   Phase = "disko"
	PhaseInstall Phase = "install"
	PhaseReboot  Phase = "reboot"
)

// AllPhases is the default --phases.
var AllPhases = []Phase{PhaseKexec, PhaseDisko, PhaseInstall, PhaseReboot}

// ParsePhases reads a --phases list such as "disko,install".
func ParsePhases(s string) ([]Phase, error) {
	var out []Phase
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		p := Phase(w)
		if !slices.Contains(AllPhases, p) {
			return nil, fmt.Errorf("--phases: unknown phase %q (phases: kexec, disko, install, reboot)", w)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--phases: no phase given (phases: kexec, disko, install, reboot)")
	}
	slices.SortFunc(out, func(a, b Phase) int { return slices.Index(AllPhases, a) - slices.Index(AllPhases, b) })
	return out, nil
}

// DiskoModes maps --disko-mode to the system.build attribute that
// nixos-anywhere builds, and to the mode of the scripts compiled in-process.
var DiskoModes = map[string]struct{ Attr, Mode, What string }{
	"disko":  {"diskoScript", "destroy,format,mount", "wipe the disks, format and mount them"},
	"format": {"formatScript", "format,mount", "format what the disks do not hold yet, then mount"},
	"mount":  {"mountScript", "mount", "only mount the existing filesystems"},
	// plan and apply compare the layout with the disks on the target (internal/plan).
	"plan":  {"mountScript", "mount", "plan the layout against the disks, changing nothing"},
	"apply": {"mountScript", "mount", "apply the layout's changes that keep all data, then mount"},
}

// Chown is one --chown PATH OWNER.
type Chown struct{ Path, Owner string }

// DiskKey is one --disk-encryption-keys REMOTE LOCAL: a file (or a pipe such
// as <(pass x)) read locally and written to REMOTE on the target for the
// disko phase only.
type DiskKey struct{ Remote, Local string }

// HardwareConfig is --generate-hardware-config KIND PATH.
type HardwareConfig struct{ Kind, Path string }

// Options are everything a run needs; cmd/anywhere fills them from its flags.
type Options struct {
	// Target is the destination as typed ([user@]host[:port] or an alias).
	Target string
	// SSH are the connection settings (-i, -p, --ssh-option, agent, SSHPASS…).
	SSH remote.Options

	// Flake is REF#NAME (or REF#nixosConfigurations.NAME…). StorePaths are
	// prebuilt [disko script, toplevel] instead.
	Flake      string
	StorePaths []string
	// DiskoLayout is a layout (FILE, or REF#NAME for diskoConfigurations or
	// a NixOS configuration's disko.devices) compiled in-process instead of
	// building system.build.diskoScript; Disks maps its disk names to devices.
	DiskoLayout string
	Disks       map[string]string
	DiskoMode   string // disko (default), format or mount
	NoDiskoDeps bool

	Phases     []Phase
	MountPoint string // default /mnt

	ExtraFiles         string
	Chown              []Chown
	CopyHostKeys       bool
	DiskEncryptionKeys []DiskKey

	SubstituteOnDestination bool
	UseMachineSubstituters  bool
	From                    string
	StoreSettings           [][2]string // --ssh-store-setting KEY VALUE
	NixOptions              [][2]string // --option KEY VALUE
	PrintBuildLogs          bool
	ShowTrace               bool
	Debug                   bool
	BuildOn                 string // auto, local or remote
	HardwareConfig          *HardwareConfig

	Kexec            string
	KexecExtraFlags  string
	ForceKexec       bool
	PostKexecSSHPort int
	// KexecTimeout bounds the wait for the installer to answer after the
	// kexec (0: DefaultKexecTimeout); the wait for the old system to go
	// down takes at most 3 minutes of it.
	KexecTimeout time.Duration

	DryRun    bool
	StateFile string // "" for the default location
	Restart   bool
	// Throwaway says the target and the state file go away with this run
	// (--vm-test's VM): a failed phase offers no resume.
	Throwaway     bool
	RebootTimeout time.Duration
	RebootDelay   time.Duration // between the reboot command and the machine going down

	// Env is the environment (for Nix and NIXOS_NO_CHECK); Getenv reads it.
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer // results: the plan, JSON events
	Stderr io.Writer // progress and remote output
	JSON   bool

	// NixBinDir is where the local nix tools are; "" searches PATH.
	NixBinDir string

	// CheckDisk, when set, is asked about every disk the layout will write
	// before anything is written; an error stops the run. Tests use it to
	// refuse any device but their own loop devices.
	CheckDisk func(device string) error
}

// getenv reads o.Env.
func (o *Options) getenv(key string) string {
	for i := len(o.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(o.Env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func (o *Options) has(p Phase) bool { return slices.Contains(o.Phases, p) }

var ownerRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$`)

// Check validates the options' combinations (what nixos-anywhere rejects,
// and the quirks it has that we do not copy) before anything runs.
func (o *Options) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Target == "" {
		bad("no target host: pass [user@]host (or --target-host)")
	}
	switch {
	case o.Flake != "" && len(o.StorePaths) > 0:
		bad("--flake and --store-paths exclude each other")
	case o.Flake == "" && len(o.StorePaths) == 0:
		bad("nothing to install: pass --flake REF#NAME or --store-paths DISKO_SCRIPT TOPLEVEL")
	}
	if o.Flake != "" && !strings.Contains(o.Flake, "#") {
		bad("--flake %s: no #NAME; write REF#NAME, e.g. .#myhost (NAME is a nixosConfigurations attribute)", o.Flake)
	}
	if len(o.StorePaths) > 0 {
		if len(o.StorePaths) != 2 {
			bad("--store-paths takes two store paths: DISKO_SCRIPT TOPLEVEL")
		}
		if o.DiskoMode != "" && o.DiskoMode != "disko" {
			bad("--disko-mode cannot be used with --store-paths (the script is already chosen)")
		}
		if o.DiskoLayout != "" {
			bad("--disko-layout cannot be used with --store-paths (the disko script is given)")
		}
	}
	if _, ok := DiskoModes[o.diskoMode()]; !ok {
		bad("--disko-mode %q: want disko, format, mount, plan or apply", o.DiskoMode)
	}
	if o.diskoMode() == "plan" && !slices.Equal(o.Phases, []Phase{PhaseDisko}) {
		bad("--disko-mode plan changes nothing, so it runs alone: add --phases disko")
	}
	if len(o.Disks) > 0 && o.DiskoLayout == "" {
		bad("--disk needs --disko-layout: a built disko script has its devices compiled in")
	}
	switch o.BuildOn {
	case "", "auto", "local", "remote":
	default:
		bad("--build-on %q: want auto, local or remote", o.BuildOn)
	}
	if o.BuildOn == "remote" && o.From != "" {
		bad("--from cannot be used with --build-on remote (the target builds, nothing is copied from a store)")
	}
	if len(o.Phases) == 0 {
		bad("no phases to run")
	}
	if o.MountPoint != "" && (!path.IsAbs(o.MountPoint) || path.Clean(o.MountPoint) == "/") {
		bad("--mount-point %q: want an absolute directory other than /", o.MountPoint)
	}
	for _, c := range o.Chown {
		p := path.Clean("/" + c.Path)
		if p == "/" || strings.Contains(c.Path, "..") {
			bad("--chown %s %s: the path must be below the installed system's root, without ..", c.Path, c.Owner)
		}
		if !ownerRe.MatchString(c.Owner) {
			bad("--chown %s %q: want OWNER or OWNER:GROUP (numeric uid:gid recommended, e.g. 1000:100)", c.Path, c.Owner)
		}
	}
	for _, k := range o.DiskEncryptionKeys {
		if !path.IsAbs(k.Remote) {
			bad("--disk-encryption-keys %s %s: the remote path must be absolute", k.Remote, k.Local)
		}
	}
	if hc := o.HardwareConfig; hc != nil && hc.Kind != "nixos-facter" && hc.Kind != "nixos-generate-config" {
		bad("--generate-hardware-config %q: want nixos-facter or nixos-generate-config", hc.Kind)
	}
	for _, kv := range o.StoreSettings {
		if !slices.Contains(storeSettings, kv[0]) {
			bad("--ssh-store-setting %s: not supported (supported: %s)", kv[0], strings.Join(storeSettings, ", "))
		}
	}
	if o.KexecTimeout < 0 {
		bad("--kexec-timeout %s: want a positive duration, e.g. 15m", o.KexecTimeout)
	}
	if o.RebootTimeout < 0 {
		bad("--reboot-timeout %s: want a positive duration, e.g. 15m", o.RebootTimeout)
	}
	if o.PostKexecSSHPort < 0 || o.PostKexecSSHPort > 65535 {
		bad("--post-kexec-ssh-port %d: not a port", o.PostKexecSSHPort)
	}
	return errors.Join(errs...)
}

// storeSettings are the ssh:// store URI settings that mean something for
// our copy. compress is accepted for compatibility (nixos-anywhere always
// sets it) and ignored: ssh-level zlib only slows a copy down.
var storeSettings = []string{"remote-store", "remote-program", "compress"}

func (o *Options) diskoMode() string {
	if o.DiskoMode == "" {
		return "disko"
	}
	return o.DiskoMode
}

func (o *Options) mountPoint() string {
	if o.MountPoint == "" {
		return "/mnt"
	}
	return path.Clean(o.MountPoint)
}

// storeSetting returns the value of --ssh-store-setting key (the last one).
func (o *Options) storeSetting(key string) string {
	v := ""
	for _, kv := range o.StoreSettings {
		if kv[0] == key {
			v = kv[1]
		}
	}
	return v
}

// DefaultRebootTimeout bounds each of the two waits after the reboot.
const DefaultRebootTimeout = 10 * time.Minute

// DefaultKexecTimeout bounds the wait for the installer after the kexec:
// an installer boots in well under a minute on real machines.
const DefaultKexecTimeout = 10 * time.Minute

func (o *Options) kexecTimeout() time.Duration {
	if o.KexecTimeout <= 0 {
		return DefaultKexecTimeout
	}
	return o.KexecTimeout
}
