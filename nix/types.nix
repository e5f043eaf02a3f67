# The type of `disko.devices`.
#
# Choice: raw data merged like disko's typed options, not disko's typed
# submodules. disko declares every node type as a module-system submodule;
# repeating that in Nix would duplicate the Go model (internal/config), which
# is the single source of truth for option names, defaults and validation.
# So the tree stays plain data that `builtins.toJSON` can serialise and the
# compiler validates (errors name the option path), and only the MERGING is
# done here, the way disko's types merge:
#
#   - attribute sets merge recursively at every depth, so one module can
#     declare `disk.main.device` and another `disk.main.content.partitions.ESP`;
#     mkDefault / mkForce / mkIf / mkMerge work at any depth;
#   - lists concatenate (disko's `listOf`: mountOptions, extraArgs, ...);
#   - hooks (preCreateHook, ...; disko's `types.lines`) join with newlines;
#   - any other value must be defined once or identically (disko's `str`,
#     `bool`, `int`), otherwise the usual "conflicting definition values"
#     error names the option and the files.
#
# `lib.types.anything` was the obvious candidate but it rejects two different
# lists (mergeEqualOption) where disko concatenates them, and has no notion
# of hooks. Functions are rejected: they cannot be compiled.
#
# Defaults are not part of this type: the module's `apply` (lib.nix
# resolveDevices) shows every option with its default when the option is
# read. A difference from disko that remains: inside disko's free-form
# attrsets (luks `settings`, zfs `options`) disko does not concatenate lists;
# here it does.
{ lib }:
let
  pure = import ./lib.nix;
  inherit (lib) types;

  tree = lib.mkOptionType {
    name = "diskoTree";
    description = "disko device tree (plain data, merged like disko's options)";
    descriptionClass = "noun";
    check = v: !(builtins.isFunction v);
    merge =
      loc: defs:
      let
        strategy = pure.mergeStrategy loc (map (d: d.value) defs);
      in
      if strategy == "attrs" then
        (types.attrsOf tree).merge loc defs
      else if strategy == "list" then
        (types.listOf tree).merge loc defs
      else if strategy == "lines" then
        builtins.concatStringsSep "\n" (map (d: d.value) defs)
      else if strategy == "conflict" then
        throw "The option `${lib.showOption loc}' has definitions of different kinds in ${lib.showFiles (lib.getFiles defs)}"
      else
        lib.options.mergeEqualOption loc defs;
  };

  collection =
    description:
    lib.mkOption {
      type = types.attrsOf tree;
      default = { };
      inherit description;
    };
in
{
  inherit tree;

  # disko's `toplevel`: the six collections, each defaulting to {} so other
  # modules can read `config.disko.devices.disk` even when it is empty. An
  # unknown collection name is an error of the module system.
  devices = types.submodule {
    options = {
      disk = collection "Block devices (disk type nodes), by name.";
      mdadm = collection "mdadm arrays, by name.";
      zpool = collection "ZFS pools, by name.";
      lvm_vg = collection "LVM volume groups, by name.";
      nodev = collection "Filesystems without a block device (tmpfs, ...), by mount point.";
      bcachefs_filesystems = collection "bcachefs filesystems, by name.";
    };
  };
}
