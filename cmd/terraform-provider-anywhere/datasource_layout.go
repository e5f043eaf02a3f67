package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
)

// defaultRootMountPoint is where the scripts mount the new system when root_mount_point is
// not set, as disko's disko.rootMountPoint defaults.
const defaultRootMountPoint = "/mnt"

// layoutDataSource is anywhere_disko_layout: it compiles a disko layout the way
// disko-compile does, so a configuration can read the file systems, swap, NixOS config and
// scripts of a layout (for outputs, checks, or other resources) without running anything.
type layoutDataSource struct{}

// newLayoutDataSource is the constructor listed in dataSources.
func newLayoutDataSource() datasource.DataSource { return &layoutDataSource{} }

// layoutModel is the data source's configuration and result, attribute for attribute.
type layoutModel struct {
	Layout          types.String `tfsdk:"layout"`
	Disks           types.Map    `tfsdk:"disks"`
	RootMountPoint  types.String `tfsdk:"root_mount_point"`
	Nixpkgs         types.String `tfsdk:"nixpkgs"`
	FileSystems     types.Map    `tfsdk:"file_systems"`
	SwapDevices     types.List   `tfsdk:"swap_devices"`
	NixOSConfigJSON types.String `tfsdk:"nixos_config_json"`
	Scripts         types.Map    `tfsdk:"scripts"`
}

// fileSystemModel is one entry of file_systems (NixOS fileSystems.<mountpoint>).
type fileSystemModel struct {
	Device        string   `tfsdk:"device"`
	FSType        string   `tfsdk:"fs_type"`
	Options       []string `tfsdk:"options"`
	NeededForBoot bool     `tfsdk:"needed_for_boot"`
}

// swapDeviceModel is one entry of swap_devices (NixOS swapDevices).
type swapDeviceModel struct {
	Device           string   `tfsdk:"device"`
	DiscardPolicy    *string  `tfsdk:"discard_policy"`
	Priority         *int64   `tfsdk:"priority"`
	RandomEncryption bool     `tfsdk:"random_encryption"`
	Options          []string `tfsdk:"options"`
}

func (d *layoutDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_disko_layout"
}

func (d *layoutDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Compiles a disko layout (the disko.devices tree) into the file systems, swap devices, " +
			"NixOS configuration and disk scripts it implies, as disko-compile does. Runs Nix to evaluate " +
			"the layout; contacts no machine.",
		Attributes: map[string]schema.Attribute{
			"layout": schema.StringAttribute{
				Required: true,
				Description: "The layout: a .nix file, a .json file, or a flake output REF#NAME " +
					"(diskoConfigurations.NAME, else nixosConfigurations.NAME.config.disko.devices). " +
					"A value containing '#' is a flake reference. Relative paths are relative to the " +
					"directory terraform runs in; write \"${path.module}/disk-config.nix\".",
			},
			"disks": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
				Description: "Devices to use instead of the layout's: disk name to device path (disko's --disk NAME DEVICE).",
			},
			"root_mount_point": schema.StringAttribute{
				Optional:    true,
				Computed:    true,
				Description: "Where the scripts mount the new system's root (disko.rootMountPoint); default " + defaultRootMountPoint + ".",
			},
			"nixpkgs": schema.StringAttribute{
				Optional: true,
				Description: "A nixpkgs (or nixpkgs.lib) checkout whose lib/ is passed as `lib` to a layout " +
					"that is a function; default <nixpkgs/lib> from NIX_PATH.",
			},
			"file_systems": schema.MapNestedAttribute{
				Computed:    true,
				Description: "NixOS fileSystems the layout implies, keyed by mount point.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"device":          schema.StringAttribute{Computed: true, Description: "Device (or dataset) mounted there."},
					"fs_type":         schema.StringAttribute{Computed: true, Description: "File system type (NixOS fsType)."},
					"options":         schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Mount options."},
					"needed_for_boot": schema.BoolAttribute{Computed: true, Description: "Mounted in the initrd (NixOS neededForBoot)."},
				}},
			},
			"swap_devices": schema.ListNestedAttribute{
				Computed:    true,
				Description: "NixOS swapDevices the layout implies, in the order disko emits them.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"device":            schema.StringAttribute{Computed: true, Description: "Swap device."},
					"discard_policy":    schema.StringAttribute{Computed: true, Description: "NixOS discardPolicy, null when unset."},
					"priority":          schema.Int64Attribute{Computed: true, Description: "Swap priority, null when unset."},
					"random_encryption": schema.BoolAttribute{Computed: true, Description: "Encrypted with a random key at each boot."},
					"options":           schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Swap options."},
				}},
			},
			"nixos_config_json": schema.StringAttribute{
				Computed:    true,
				Description: "The whole NixOS configuration the layout implies (fileSystems, swapDevices, boot), as disko-compile nixos-config prints it.",
			},
			"scripts": schema.MapAttribute{
				Computed:    true,
				ElementType: types.StringType,
				Description: "Disk scripts by disko mode: " + strings.Join(codegen.Modes, ", ") + ".",
			},
		},
	}
}

func (d *layoutDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m layoutModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	disks := map[string]string{}
	if !m.Disks.IsNull() {
		resp.Diagnostics.Append(m.Disks.ElementsAs(ctx, &disks, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if m.RootMountPoint.IsNull() || m.RootMountPoint.ValueString() == "" {
		m.RootMountPoint = types.StringValue(defaultRootMountPoint)
	}

	devices, diags := loadLayout(ctx, m.Layout.ValueString(), m.Nixpkgs.ValueString(), disks)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(m.compile(ctx, devices)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// loadLayout evaluates a layout and loads it with the disks overridden. Problems become
// diagnostics on the attribute that caused them, each naming the layout's option path.
func loadLayout(ctx context.Context, layout, nixpkgs string, disks map[string]string) (*config.Devices, diag.Diagnostics) {
	var diags diag.Diagnostics
	src := eval.Source{Path: layout, Nixpkgs: nixpkgs}
	if strings.Contains(layout, "#") {
		src = eval.Source{Flake: layout, Nixpkgs: nixpkgs}
	}
	raw, err := (&eval.Evaluator{}).Devices(ctx, src)
	if err != nil {
		diags.AddAttributeError(path.Root("layout"), "Cannot evaluate the layout", err.Error())
		return nil, diags
	}
	if !unknownDisks(raw, disks, &diags) {
		return nil, diags
	}
	devices, err := config.Load(raw, config.LoadOptions{DiskDevices: disks})
	if err != nil {
		addProblems(&diags, layout, err)
		return nil, diags
	}
	return devices, diags
}

// unknownDisks reports each disks key that names no disk of the layout at disks[KEY],
// with the layout's disk names as the hint, and says whether all keys are known.
func unknownDisks(raw json.RawMessage, disks map[string]string, diags *diag.Diagnostics) bool {
	var top struct {
		Disk map[string]json.RawMessage `json:"disk"`
	}
	if json.Unmarshal(raw, &top) != nil {
		return true // config.Load reports a malformed tree at its option path
	}
	names := slices.Sorted(maps.Keys(top.Disk))
	ok := true
	for _, name := range slices.Sorted(maps.Keys(disks)) {
		if _, found := top.Disk[name]; !found {
			diags.AddAttributeError(path.Root("disks").AtMapKey(name), "Unknown disk",
				fmt.Sprintf("disks[%q] names no disk of this layout; its disks (%s.disk.NAME) are: %s",
					name, config.RootPath, strings.Join(names, ", ")))
			ok = false
		}
	}
	return ok
}

// addProblems turns a layout error into one diagnostic per problem, on the layout
// attribute, with the option path the user wrote in the summary so it can be found in
// the layout's source.
func addProblems(diags *diag.Diagnostics, layout string, err error) {
	var problems config.Problems
	if !errors.As(err, &problems) {
		diags.AddAttributeError(path.Root("layout"), "Invalid layout", fmt.Sprintf("%s: %v", layout, err))
		return
	}
	for _, p := range problems {
		diags.AddAttributeError(path.Root("layout"), "Invalid layout at "+p.Path, fmt.Sprintf("%s: %s: %s", layout, p.Path, p.Message))
	}
}

// compile fills the computed attributes from a loaded layout.
func (m *layoutModel) compile(ctx context.Context, devices *config.Devices) diag.Diagnostics {
	var diags diag.Diagnostics
	layout := m.Layout.ValueString()
	conf, err := nixos.Config(devices)
	if err != nil {
		addProblems(&diags, layout, err)
		return diags
	}
	confJSON, err := nixos.JSON(devices)
	if err != nil {
		addProblems(&diags, layout, err)
		return diags
	}
	scripts, err := codegen.Generate(devices, codegen.Options{RootMountpoint: m.RootMountPoint.ValueString()})
	if err != nil {
		addProblems(&diags, layout, err)
		return diags
	}
	fileSystems, err := fileSystemsOf(conf)
	if err != nil {
		diags.AddError("Unexpected NixOS configuration", err.Error())
		return diags
	}
	swaps, err := swapDevicesOf(conf)
	if err != nil {
		diags.AddError("Unexpected NixOS configuration", err.Error())
		return diags
	}
	byMode := map[string]string{}
	for _, mode := range codegen.Modes {
		text, err := scripts.ByMode(mode)
		if err != nil {
			diags.AddError("Unexpected script mode", err.Error())
			return diags
		}
		byMode[mode] = string(text)
	}

	var d diag.Diagnostics
	m.FileSystems, d = types.MapValueFrom(ctx, fileSystemType, fileSystems)
	diags.Append(d...)
	m.SwapDevices, d = types.ListValueFrom(ctx, swapDeviceType, swaps)
	diags.Append(d...)
	m.Scripts, d = types.MapValueFrom(ctx, types.StringType, byMode)
	diags.Append(d...)
	m.NixOSConfigJSON = types.StringValue(string(confJSON))
	return diags
}

// fileSystemType and swapDeviceType are the object types of file_systems and swap_devices
// entries, matching the schema's nested attributes.
var (
	fileSystemType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"device":          types.StringType,
		"fs_type":         types.StringType,
		"options":         types.ListType{ElemType: types.StringType},
		"needed_for_boot": types.BoolType,
	}}
	swapDeviceType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"device":            types.StringType,
		"discard_policy":    types.StringType,
		"priority":          types.Int64Type,
		"random_encryption": types.BoolType,
		"options":           types.ListType{ElemType: types.StringType},
	}}
)

// fileSystemsOf reads fileSystems out of nixos.Config's plain values.
func fileSystemsOf(conf map[string]any) (map[string]fileSystemModel, error) {
	entries, ok := conf["fileSystems"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fileSystems is %T, not an attribute set", conf["fileSystems"])
	}
	out := map[string]fileSystemModel{}
	for mountpoint, v := range entries {
		e, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("fileSystems.%q is %T, not an attribute set", mountpoint, v)
		}
		options, err := stringList(e["options"])
		if err != nil {
			return nil, fmt.Errorf("fileSystems.%q.options: %w", mountpoint, err)
		}
		fs := fileSystemModel{Options: options}
		fs.Device, _ = e["device"].(string)
		fs.FSType, _ = e["fsType"].(string)
		fs.NeededForBoot, _ = e["neededForBoot"].(bool)
		out[mountpoint] = fs
	}
	return out, nil
}

// swapDevicesOf reads swapDevices out of nixos.Config's plain values.
func swapDevicesOf(conf map[string]any) ([]swapDeviceModel, error) {
	entries, ok := conf["swapDevices"].([]any)
	if !ok {
		return nil, fmt.Errorf("swapDevices is %T, not a list", conf["swapDevices"])
	}
	out := []swapDeviceModel{}
	for i, v := range entries {
		e, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("swapDevices[%d] is %T, not an attribute set", i, v)
		}
		options, err := stringList(e["options"])
		if err != nil {
			return nil, fmt.Errorf("swapDevices[%d].options: %w", i, err)
		}
		s := swapDeviceModel{Options: options}
		s.Device, _ = e["device"].(string)
		if p, ok := e["discardPolicy"].(string); ok {
			s.DiscardPolicy = &p
		}
		if p, ok := e["priority"].(int64); ok {
			s.Priority = &p
		}
		if re, ok := e["randomEncryption"].(map[string]any); ok {
			s.RandomEncryption, _ = re["enable"].(bool)
		}
		out = append(out, s)
	}
	return out, nil
}

// stringList converts a []any of strings; nil is an empty list.
func stringList(v any) ([]string, error) {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%v is %T, not a string", item, item)
		}
		out = append(out, s)
	}
	return out, nil
}
