package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// installResource is anywhere_install: one machine installed with NixOS by
// internal/install (the phases of `anywhere`), then kept on its system by
// deploys. Deleting it forgets the machine and never wipes it.
type installResource struct{}

// newInstallResource is the constructor the provider registers.
func newInstallResource() resource.Resource { return &installResource{} }

func init() { resources = append(resources, newInstallResource) }

var (
	_ resource.ResourceWithImportState = (*installResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*installResource)(nil)
)

// installModel mirrors the schema below.
type installModel struct {
	ID                     types.String `tfsdk:"id"`
	TargetHost             types.String `tfsdk:"target_host"`
	Port                   types.Int64  `tfsdk:"port"`
	SSHPrivateKey          types.String `tfsdk:"ssh_private_key"`
	HostKey                types.String `tfsdk:"host_key"`
	Flake                  types.String `tfsdk:"flake"`
	StorePaths             *storePaths  `tfsdk:"store_paths"`
	DiskoLayout            types.String `tfsdk:"disko_layout"`
	Disks                  types.Map    `tfsdk:"disks"`
	Phases                 types.List   `tfsdk:"phases"`
	Kexec                  types.String `tfsdk:"kexec"`
	ExtraFiles             types.String `tfsdk:"extra_files"`
	DiskEncryptionKeys     types.Map    `tfsdk:"disk_encryption_keys"`
	CopyHostKeys           types.Bool   `tfsdk:"copy_host_keys"`
	BuildOn                types.String `tfsdk:"build_on"`
	GenerateHardwareConfig *hardware    `tfsdk:"generate_hardware_config"`
	NixOptions             types.Map    `tfsdk:"nix_options"`
	MountPoint             types.String `tfsdk:"mount_point"`
	PlanFacts              types.Bool   `tfsdk:"plan_facts"`
	System                 types.String `tfsdk:"system"`
	HostKeyFingerprint     types.String `tfsdk:"host_key_fingerprint"`
	InstalledAt            types.String `tfsdk:"installed_at"`
}

// storePaths are prebuilt store paths instead of a flake (--store-paths).
type storePaths struct {
	DiskoScript types.String `tfsdk:"disko_script"`
	Toplevel    types.String `tfsdk:"toplevel"`
}

// hardware is --generate-hardware-config KIND PATH.
type hardware struct {
	Kind types.String `tfsdk:"kind"`
	Path types.String `tfsdk:"path"`
}

func (r *installResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_install"
}

// replaceOnceInstalled asks for a replacement when an installed machine's
// disk layout changes (a new layout means wiping and installing again), but
// not when the old value is unknown to the state, as after an import.
var replaceOnceInstalled = stringplanmodifier.RequiresReplaceIf(
	func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !req.StateValue.IsNull()
	},
	"A new disk layout wipes the disks and installs again (replacement).",
	"A new disk layout wipes the disks and installs again (replacement).",
)

func (r *installResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "A machine installed with NixOS over SSH, as `anywhere` (nixos-anywhere) does: create runs the phases " +
			"kexec, disko, install and reboot; a change of the system alone deploys it without touching the disks; " +
			"a change of the disk layout replaces the resource (wipes and installs again); destroy only forgets the " +
			"machine and never wipes it.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, Description: "The target host as written; `terraform import` takes the same.",
				PlanModifiers: keep,
			},
			"target_host": schema.StringAttribute{
				Required: true, Description: "[user@]host[:port] to install (the user defaults to root).",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"port": schema.Int64Attribute{Optional: true, Description: "SSH port (default 22, or the port in target_host)."},
			"ssh_private_key": schema.StringAttribute{
				Optional: true, Sensitive: true, WriteOnly: true,
				Description: "Private key (OpenSSH PEM) to log in with, in addition to ssh-agent and ~/.ssh. " +
					"Write-only: never stored in the plan or the state.",
			},
			"host_key": schema.StringAttribute{
				Optional: true, Computed: true, PlanModifiers: keep,
				Description: "The host's public key (`ssh-ed25519 AAAA…`). When set, only this key is accepted; " +
					"when not, the key seen at create is accepted and recorded here, and required from then on.",
			},
			"flake": schema.StringAttribute{Optional: true, Description: "REF#NAME of the NixOS configuration (--flake)."},
			"store_paths": schema.SingleNestedAttribute{
				Optional: true, Description: "Prebuilt store paths instead of flake (--store-paths).",
				Attributes: map[string]schema.Attribute{
					"disko_script": schema.StringAttribute{Required: true, Description: "The disk script (system.build.diskoScript).",
						PlanModifiers: []planmodifier.String{replaceOnceInstalled}},
					"toplevel": schema.StringAttribute{Required: true, Description: "The system (system.build.toplevel)."},
				},
			},
			"disko_layout": schema.StringAttribute{
				Optional: true, PlanModifiers: []planmodifier.String{replaceOnceInstalled},
				Description: "A disko layout (FILE, or REF#NAME) compiled in-process for the disko phase (--disko-layout).",
			},
			"disks": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				Description: "Disk name of the layout to device, e.g. { main = \"/dev/sda\" } (--disk).",
			},
			"phases": schema.ListAttribute{
				ElementType: types.StringType, Optional: true,
				Description: "Phases of the create: kexec, disko, install, reboot (default all).",
			},
			"kexec":       schema.StringAttribute{Optional: true, Description: "Installer tarball, URL or path (--kexec)."},
			"extra_files": schema.StringAttribute{Optional: true, Description: "Local directory copied into the installed root (--extra-files)."},
			"disk_encryption_keys": schema.MapAttribute{
				ElementType: types.StringType, Optional: true, Sensitive: true,
				Description: "Remote path to local file (--disk-encryption-keys). The files are read at apply and " +
					"never stored; only these paths are in the state, and are hidden in the plan.",
			},
			"copy_host_keys": schema.BoolAttribute{Optional: true, Description: "Copy the target's SSH host keys into the new system (--copy-host-keys)."},
			"build_on":       schema.StringAttribute{Optional: true, Description: "auto, local or remote (--build-on)."},
			"generate_hardware_config": schema.SingleNestedAttribute{
				Optional: true, Description: "--generate-hardware-config KIND PATH.",
				Attributes: map[string]schema.Attribute{
					"kind": schema.StringAttribute{Required: true, Description: "nixos-facter or nixos-generate-config."},
					"path": schema.StringAttribute{Required: true, Description: "Local file the report is written to."},
				},
			},
			"nix_options": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				Description: "Nix options for local and remote Nix (--option KEY VALUE).",
			},
			"mount_point": schema.StringAttribute{Optional: true, Description: "Where the target mounts the new system (--mount-point, default /mnt)."},
			"plan_facts": schema.BoolAttribute{
				Optional:    true,
				Description: "When true, the plan of a create connects read-only and shows, as a warning, the disks that will be wiped.",
			},
			"system": schema.StringAttribute{
				Computed: true, Description: "The installed system's toplevel store path.",
			},
			"host_key_fingerprint": schema.StringAttribute{Computed: true, PlanModifiers: keep, Description: "SHA256 fingerprint of host_key."},
			"installed_at":         schema.StringAttribute{Computed: true, PlanModifiers: keep, Description: "When the create finished (RFC 3339)."},
		},
	}
}

// options turns the model into install options. key is the write-only
// private key from the configuration.
func (m *installModel) options(ctx context.Context, key string) (install.Options, error) {
	o := install.Options{
		Target:      m.TargetHost.ValueString(),
		Flake:       m.Flake.ValueString(),
		DiskoLayout: m.DiskoLayout.ValueString(),
		Kexec:       m.Kexec.ValueString(),
		ExtraFiles:  m.ExtraFiles.ValueString(),
		BuildOn:     m.BuildOn.ValueString(),
		MountPoint:  m.MountPoint.ValueString(),
		Env:         os.Environ(),
		Phases:      install.AllPhases,
	}
	o.CopyHostKeys = m.CopyHostKeys.ValueBool()
	if sp := m.StorePaths; sp != nil {
		o.StorePaths = []string{sp.DiskoScript.ValueString(), sp.Toplevel.ValueString()}
	}
	if hc := m.GenerateHardwareConfig; hc != nil {
		o.HardwareConfig = &install.HardwareConfig{Kind: hc.Kind.ValueString(), Path: hc.Path.ValueString()}
	}
	var err error
	if o.Disks, err = stringMap(ctx, m.Disks); err != nil {
		return o, err
	}
	keys, err := stringMap(ctx, m.DiskEncryptionKeys)
	if err != nil {
		return o, err
	}
	for _, remote := range slices.Sorted(maps.Keys(keys)) {
		o.DiskEncryptionKeys = append(o.DiskEncryptionKeys, install.DiskKey{Remote: remote, Local: keys[remote]})
	}
	nixOpts, err := stringMap(ctx, m.NixOptions)
	if err != nil {
		return o, err
	}
	for _, k := range slices.Sorted(maps.Keys(nixOpts)) {
		o.NixOptions = append(o.NixOptions, [2]string{k, nixOpts[k]})
	}
	if !m.Phases.IsNull() {
		var names []string
		if d := m.Phases.ElementsAs(ctx, &names, false); d.HasError() {
			return o, fmt.Errorf("phases: want a list of strings")
		}
		if o.Phases, err = install.ParsePhases(strings.Join(names, ",")); err != nil {
			return o, errors.New(strings.Replace(err.Error(), "--phases", "phases", 1))
		}
	}

	o.SSH.FromEnv(os.Getenv, false)
	o.SSH.Port = int(m.Port.ValueInt64())
	if key != "" {
		o.SSH.PrivateKey = []byte(key)
	}
	// Host keys are the resource's own business: the key in host_key, or
	// the one the create sees. known_hosts files are neither read nor
	// written, so two configurations never disagree through them.
	o.SSH.SSHOptions = []string{"UserKnownHostsFile=none", "GlobalKnownHostsFile=none"}
	if hk := m.HostKey.ValueString(); hk != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hk))
		if err != nil {
			return o, fmt.Errorf("host_key: %w (want a public key line such as \"ssh-ed25519 AAAA…\")", err)
		}
		o.SSH.ExpectHostKey = k
	}
	return o, nil
}

func stringMap(ctx context.Context, m types.Map) (map[string]string, error) {
	if m.IsNull() || m.IsUnknown() {
		return nil, nil
	}
	out := map[string]string{}
	if d := m.ElementsAs(ctx, &out, false); d.HasError() {
		return nil, fmt.Errorf("want a map of strings")
	}
	return out, nil
}

// privateKey reads the write-only ssh_private_key, which only the
// configuration carries.
func privateKey(ctx context.Context, cfg tfsdk.Config) (string, diag.Diagnostics) {
	var key types.String
	d := cfg.GetAttribute(ctx, path.Root("ssh_private_key"), &key)
	return key.ValueString(), d
}

// Create installs the machine: the host key is verified (or, without
// host_key, accepted and recorded), then install.Run runs the phases.
func (r *installResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m installModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	key, d := privateKey(ctx, req.Config)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() {
		return
	}
	o, err := m.options(ctx, key)
	if err != nil {
		resp.Diagnostics.AddError("anywhere_install "+m.TargetHost.ValueString(), err.Error())
		return
	}
	hostKey, err := learnHostKey(ctx, o)
	if err != nil {
		addRunError(&resp.Diagnostics, m.TargetHost.ValueString(), "connecting", err)
		return
	}
	o.SSH.ExpectHostKey = hostKey
	logs := newLogWriter(ctx, m.TargetHost.ValueString())
	o.Stderr = logs
	err = install.Run(ctx, o)
	logs.Flush()
	if err != nil {
		addRunError(&resp.Diagnostics, m.TargetHost.ValueString(), "installing", err)
		return
	}
	system, err := install.SystemPath(ctx, o)
	if err != nil {
		addRunError(&resp.Diagnostics, m.TargetHost.ValueString(), "reading the installed system", err)
		return
	}
	if m.HostKey.IsUnknown() && slices.Contains(o.Phases, install.PhaseReboot) {
		// The installed system may have made its own host key; record
		// the key it answers with now (the reboot phase has already
		// checked it is the new system, not the installer).
		o.SSH.ExpectHostKey = nil
		if k, err := learnHostKey(ctx, o); err == nil {
			hostKey = k
		} else {
			resp.Diagnostics.AddWarning("anywhere_install "+m.TargetHost.ValueString()+": host key not recorded again after the reboot",
				err.Error()+"\nhost_key keeps the key seen before the install.")
		}
	}
	m.ID = m.TargetHost
	m.System = types.StringValue(system)
	m.setHostKey(hostKey)
	m.InstalledAt = types.StringValue(time.Now().UTC().Format(time.RFC3339))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// learnHostKey returns the pinned host key, or connects once to accept and
// learn the key of a host seen for the first time.
func learnHostKey(ctx context.Context, o install.Options) (ssh.PublicKey, error) {
	if o.SSH.ExpectHostKey != nil {
		return o.SSH.ExpectHostKey, nil
	}
	t, err := remote.ParseTarget(o.Target)
	if err != nil {
		return nil, err
	}
	so := o.SSH
	so.AcceptNewHostKey = true
	c, err := remote.Dial(ctx, t, so)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.HostKey(), nil
}

func (m *installModel) setHostKey(k ssh.PublicKey) {
	m.HostKey = types.StringValue(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
	m.HostKeyFingerprint = types.StringValue(ssh.FingerprintSHA256(k))
}

// Read keeps the state: reading a machine would need its private key,
// which is write-only, and a plan contacts nothing by default.
func (r *installResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m installModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.ID.IsNull() || m.ID.ValueString() == "" {
		m.ID = m.TargetHost
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Update deploys the new system when it changed, without touching the
// disks (a layout change is a replacement, planned as such); other changes
// are only recorded.
func (r *installResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state installModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	key, d := privateKey(ctx, req.Config)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() {
		return
	}
	o, err := plan.options(ctx, key)
	if err != nil {
		resp.Diagnostics.AddError("anywhere_install "+plan.TargetHost.ValueString(), err.Error())
		return
	}
	plan.ID = plan.TargetHost
	if !plan.System.IsUnknown() && plan.System.Equal(state.System) {
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	hostKey, err := learnHostKey(ctx, o)
	if err != nil {
		addRunError(&resp.Diagnostics, plan.TargetHost.ValueString(), "connecting", err)
		return
	}
	o.SSH.ExpectHostKey = hostKey
	logs := newLogWriter(ctx, plan.TargetHost.ValueString())
	o.Stderr = logs
	done, err := install.Deploy(ctx, o)
	logs.Flush()
	if err != nil {
		addRunError(&resp.Diagnostics, plan.TargetHost.ValueString(), "deploying", err)
		return
	}
	plan.System = types.StringValue(done.Toplevel)
	plan.setHostKey(done.HostKey)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete forgets the machine. It never wipes: the machine keeps running
// what was installed.
func (r *installResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m installModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	resp.Diagnostics.AddWarning(
		"anywhere_install "+m.TargetHost.ValueString()+" forgotten, not wiped",
		"The machine was removed from the Terraform state only. It still runs its installed system and its disks are untouched; "+
			"wipe or reinstall it yourself if that is what you meant.")
}

// ImportState takes an installed machine by its host ([user@]host[:port]):
// the next apply deploys the configured system onto it without wiping (the
// layout of an imported machine is not known, so it never asks for a
// replacement), and records the host key it sees.
func (r *installResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if _, err := remote.ParseTarget(req.ID); err != nil {
		resp.Diagnostics.AddError("anywhere_install import "+req.ID, err.Error()+" (import by [user@]host[:port])")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("target_host"), req.ID)...)
}
