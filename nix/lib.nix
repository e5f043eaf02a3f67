# Pure helpers of the Nix layer.
#
# Everything here uses builtins only, so that the logic the module, the flake
# and `lib.compile` rely on can be evaluated by a bare `nix-instantiate` (the
# CI machines have no nixpkgs). The code that needs nixpkgs (option types,
# derivations) lives in types.nix, compile.nix and module.nix and only wires
# these functions together.
let
  inherit (builtins)
    attrNames
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    head
    isAttrs
    isFunction
    isList
    isPath
    isString
    length
    listToAttrs
    mapAttrs
    match
    substring
    stringLength
    typeOf
    ;

  unique = list: foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ] list;
  sort = builtins.sort builtins.lessThan;
  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  showPath = path: concatStringsSep "." path;
  isDerivationLike = v: isAttrs v && v ? outPath;
in
rec {
  version = "0.1.0";

  # Systems the flake builds for. The compiler and the installer are pure Go,
  # so both run on the operator's Mac too; the scripts and the NixOS module
  # only make sense on Linux.
  systems = {
    linux = [
      "x86_64-linux"
      "aarch64-linux"
    ];
    darwin = [
      "x86_64-darwin"
      "aarch64-darwin"
    ];
    all = systems.linux ++ systems.darwin;
  };

  # The six scripts `disko-compile scripts` writes, with the names disko and
  # nixos-anywhere use for them. This table is the single source for script
  # file names, `system.build` attribute names and executable names.
  modes = [
    {
      mode = "destroy";
      file = "destroy.sh";
      attr = "destroy";
      bin = "disko-destroy";
    }
    {
      mode = "format";
      file = "format.sh";
      attr = "format";
      bin = "disko-format";
    }
    {
      mode = "mount";
      file = "mount.sh";
      attr = "mount";
      bin = "disko-mount";
    }
    {
      mode = "unmount";
      file = "unmount.sh";
      attr = "unmount";
      bin = "disko-unmount";
    }
    {
      mode = "format,mount";
      file = "format-mount.sh";
      attr = "formatMount";
      bin = "disko-format-mount";
    }
    {
      mode = "destroy,format,mount";
      file = "destroy-format-mount.sh";
      attr = "destroyFormatMount";
      bin = "disko-destroy-format-mount";
    }
  ];

  # disko's legacy outputs (written directly to $out, still read by
  # nixos-anywhere's --disko-mode). `target` is the attr of the script they
  # run; the destroying ones never asked for confirmation in disko, so they
  # pass --yes-wipe-all-disks to our scripts, which do ask.
  legacyScripts = [
    {
      attr = "destroyScript";
      name = "disko-destroy";
      target = "destroy";
      args = [ "--yes-wipe-all-disks" ];
    }
    {
      attr = "formatScript";
      name = "disko-format";
      target = "format";
      args = [ ];
    }
    {
      attr = "mountScript";
      name = "disko-mount";
      target = "mount";
      args = [ ];
    }
    {
      attr = "diskoScript";
      name = "disko";
      target = "destroyFormatMount";
      args = [ "--yes-wipe-all-disks" ];
    }
  ];

  # disko's deprecated aliases, kept so old callers still evaluate (with the
  # same warning disko prints).
  deprecatedScripts = [
    {
      attr = "disko";
      target = "diskoScript";
    }
    {
      attr = "diskoNoDeps";
      target = "diskoScriptNoDeps";
    }
  ];

  # The variant that calls tools by plain name (no store paths, so nothing but
  # the script is copied to an in-memory installer).
  noDepsAttr = attr: attr + "NoDeps";

  # Every script attribute the module puts in system.build, in a stable order.
  scriptAttrNames =
    let
      base = map (m: m.attr) modes ++ map (l: l.attr) legacyScripts;
    in
    base ++ map noDepsAttr base ++ map (d: d.attr) deprecatedScripts;

  # The other system.build attributes of the module.
  extraBuildAttrNames = [
    "diskoCompiled"
    "diskoNixosConfig"
  ];

  # `system.build` attribute -> script path inside the compiled output,
  # relative to its root. Used by the module and by lib.compile.
  scriptFile = variant: m: "${variant}/${m.file}";

  # ---------------------------------------------------------------------
  # Layout normalisation: any of the shapes a user holds (a disk-config file
  # `{ disko.devices = ...; }`, the bare devices tree, or the value of the
  # `disko.devices` option with its `_module`) becomes the plain devices tree
  # that `disko-compile` reads as JSON.

  devicesOf =
    layout:
    if isAttrs layout && layout ? disko then
      layout.disko.devices or (throw "disko: the layout has `disko` but no `disko.devices`")
    else
      layout;

  # Recursive cleanup with the option path in every error:
  # - paths become their string, so a `keyFile = ./secret.key` is NOT copied
  #   into the world-readable store (toJSON would copy it);
  # - packages become their store path (context kept: the path stays a build
  #   dependency, e.g. a hook that calls "${pkgs.foo}/bin/foo");
  # - functions cannot be compiled and are an error naming the option path.
  normalizeValue =
    path: v:
    if isPath v then
      toString v
    else if isDerivationLike v then
      "${v}"
    else if isAttrs v then
      mapAttrs (name: normalizeValue (path ++ [ name ])) v
    else if isList v then
      builtins.genList (i: normalizeValue (path ++ [ "[${toString i}]" ]) (builtins.elemAt v i)) (length v)
    else if isFunction v then
      throw "${showPath path}: is a function; a disk layout must be plain data (call the function or use its result)"
    else
      v;

  # The devices tree as `disko-compile` reads it: internal keys (`_module` of
  # the option's submodule, disko's `_`-prefixed internals) and empty
  # top-level collections dropped.
  normalize =
    layout:
    let
      devices = devicesOf layout;
      kept = filter (n: !(hasPrefix "_" n) && devices.${n} != { }) (attrNames devices);
    in
    if !isAttrs devices then
      throw "disko.devices: expected an attribute set (disk, lvm_vg, mdadm, zpool, nodev, ...), got a ${typeOf devices}"
    else
      listToAttrs (
        map (n: {
          name = n;
          value = normalizeValue [ "disko" "devices" n ] devices.${n};
        }) kept
      );

  toJSON = layout: builtins.toJSON (normalize layout);

  # disko refuses to build scripts for a layout without disks (usually a
  # forgotten import); so do we, with the same message.
  hasDisks = layout: (devicesOf layout).disk or { } != { };
  noDisksMessage = "No disks defined, did you forget to import your disko config?";

  # An empty layout has nothing to mount: the module then skips the compiler
  # entirely (no build, no import-from-derivation).
  isEmpty = layout: normalize layout == { };

  # ---------------------------------------------------------------------
  # Option merging of `disko.devices` (see types.nix). disko's options are
  # typed: attribute sets merge recursively, lists concatenate, hooks
  # (`types.lines`) join with newlines, everything else must be equal. Our
  # tree is raw data, so the strategy is chosen from the option path and the
  # definitions' values.

  hookNames = [
    "preCreateHook"
    "postCreateHook"
    "preMountHook"
    "postMountHook"
    "preUnmountHook"
    "postUnmountHook"
  ];

  mergeStrategy =
    loc: values:
    let
      kind =
        v:
        if isDerivationLike v then
          "package"
        else if isAttrs v then
          "set"
        else
          typeOf v;
      kinds = unique (map kind values);
      last = if loc == [ ] then "" else builtins.elemAt loc (length loc - 1);
    in
    if length kinds > 1 then
      "conflict"
    else if kinds == [ "set" ] then
      "attrs"
    else if kinds == [ "list" ] then
      "list"
    else if kinds == [ "string" ] && elem last hookNames then
      "lines"
    else
      "equal";

  # ---------------------------------------------------------------------
  # Tools the scripts need, as nixpkgs attribute names, derived from the node
  # types and filesystem formats in the layout (like disko's per-type
  # `_pkgs`), so a layout without ZFS does not drag ZFS into the closure that
  # nixos-anywhere copies to an installer in RAM.

  # What every layout's scripts run: the shared runtime waits on udev
  # (udevadm), reads partition tables as JSON (sfdisk | jq) and checks that a
  # disk is blank (cmp). The rest is disko's base set, kept for hooks.
  # internal/nixtest's TestToolsCoverScripts checks these lists against the
  # commands of the generated scripts.
  baseTools = [
    "bash"
    "coreutils"
    "util-linux"
    "diffutils"
    "jq"
    "gnugrep"
    "gnused"
    "gawk"
    "findutils"
    "systemdMinimal"
  ];

  typeTools = {
    gpt = [
      "gptfdisk"
      "parted"
    ];
    table = [ "parted" ];
    luks = [ "cryptsetup" ];
    # kmod: creating a volume group loads the device-mapper targets its
    # volumes need (modprobe).
    lvm_pv = [
      "lvm2"
      "kmod"
    ];
    lvm_vg = [
      "lvm2"
      "kmod"
    ];
    mdraid = [ "mdadm" ];
    mdadm = [ "mdadm" ];
    zfs = [ "zfs" ];
    zpool = [ "zfs" ];
    zfs_fs = [ "zfs" ];
    zfs_volume = [ "zfs" ];
    btrfs = [ "btrfs-progs" ];
    bcachefs = [ "bcachefs-tools" ];
    bcachefs_filesystem = [ "bcachefs-tools" ];
  };

  formatTools = {
    ext2 = [ "e2fsprogs" ];
    ext3 = [ "e2fsprogs" ];
    ext4 = [ "e2fsprogs" ];
    vfat = [ "dosfstools" ];
    fat = [ "dosfstools" ];
    msdos = [ "dosfstools" ];
    fat12 = [ "dosfstools" ];
    fat16 = [ "dosfstools" ];
    fat32 = [ "dosfstools" ];
    xfs = [ "xfsprogs" ];
    btrfs = [ "btrfs-progs" ];
    f2fs = [ "f2fs-tools" ];
    bcachefs = [ "bcachefs-tools" ];
    exfat = [ "exfatprogs" ];
    ntfs = [ "ntfs3g" ];
  };

  # What destroy needs whatever the layout says: it tears down what is ON the
  # disks, which may be anything (disko's destroyDependencies, plus cryptsetup,
  # which closes an open LUKS device found there).
  destroyTools = [
    "util-linux"
    "e2fsprogs"
    "mdadm"
    "zfs"
    "lvm2"
    "cryptsetup"
    "bash"
    "jq"
    "gnused"
    "gawk"
    "coreutils"
  ];

  # Every attribute set in the tree, depth first.
  nodesOf =
    v:
    if isAttrs v then
      [ v ] ++ concatMap nodesOf (builtins.attrValues v)
    else if isList v then
      concatMap nodesOf v
    else
      [ ];

  toolsFor =
    layout:
    let
      nodes = nodesOf (normalize layout);
      strings = key: filter isString (map (n: n.${key} or null) nodes);
      fromTypes = concatMap (t: typeTools.${t} or [ ]) (strings "type");
      fromFormats = concatMap (f: formatTools.${f} or [ ]) (strings "format" ++ strings "fsType");
    in
    sort (unique (baseTools ++ fromTypes ++ fromFormats));

  destroyToolsFor = layout: sort (unique (toolsFor layout ++ destroyTools));

  # lib.makeBinPath without nixpkgs: the `bin` output of multi-output packages
  # (util-linux, e2fsprogs, lvm2 keep their binaries there), as lib.getBin does.
  binDir =
    p:
    let
      chosen = if p.outputSpecified or false then p else p.bin or p.out or p;
    in
    "${chosen}/bin";
  binPath = packages: concatStringsSep ":" (map binDir packages);

  # ---------------------------------------------------------------------
  # The NixOS options `disko-compile nixos-config` may set. The module must
  # name its top-level keys statically (computing them from the config would
  # be infinite recursion, as in disko), so a key outside this list would be
  # dropped silently; `splitNixosConfig` finds such keys for an assertion.
  nixosConfigKeys = [
    "fileSystems"
    "swapDevices"
    "boot"
    "networking"
  ];

  splitNixosConfig =
    cfg:
    if !isAttrs cfg then
      throw "disko: the NixOS config from disko-compile must be an attribute set, got a ${typeOf cfg}"
    else
      {
        known = listToAttrs (
          map (n: {
            name = n;
            value = cfg.${n};
          }) (filter (n: cfg ? ${n}) nixosConfigKeys)
        );
        unknown = filter (n: !(elem n nixosConfigKeys)) (attrNames cfg);
      };

  # Value-level comparison of two NixOS configs (the generated file against
  # what disko-compile gives now): one line per differing option path. Lists
  # compare element-wise, so a reordered list is reported.
  diffValues =
    let
      go =
        path: a: b:
        if a == b then
          [ ]
        else if isAttrs a && isAttrs b && !(isDerivationLike a) && !(isDerivationLike b) then
          concatMap (
            n:
            if !(a ? ${n}) then
              [ "${showPath (path ++ [ n ])}: only in the current layout: ${builtins.toJSON b.${n}}" ]
            else if !(b ? ${n}) then
              [ "${showPath (path ++ [ n ])}: only in the generated file: ${builtins.toJSON a.${n}}" ]
            else
              go (path ++ [ n ]) a.${n} b.${n}
          ) (sort (unique (attrNames a ++ attrNames b)))
        else
          [
            "${
              if path == [ ] then "<top>" else showPath path
            }: generated file has ${builtins.toJSON a}, current layout gives ${builtins.toJSON b}"
          ];
    in
    generated: current: go [ ] generated current;

  # The file name a user knows: "disk-config.generated.nix" for
  # /nix/store/<hash>-source/disk-config.generated.nix or
  # /nix/store/<hash>-disk-config.generated.nix.
  storeBaseName =
    file:
    let
      base = baseNameOf (toString file);
      m = match "[0-9a-z]{32}-(.*)" base;
    in
    if m == null then base else head m;

  # How to bring a stale generated file up to date; printed by the check.
  regenerateHint =
    file:
    ''
      The generated NixOS config ${file} no longer matches disko.devices.
      Regenerate it with one of:
        disko-compile nixos-config --nix ./disk-config.nix > ${file}
        cp "$(nix build --no-link --print-out-paths .#nixosConfigurations.<host>.config.system.build.diskoNixosConfig)/nixos-config.nix" ${file}
    '';

  # ---------------------------------------------------------------------
  # Source of the Go packages: the repository without what would change the
  # hash needlessly (git metadata, build results, the Nix files and examples
  # that do not affect the binaries) or break buildGoModule (a vendor/ dir).
  sourceFilter =
    root: path: type:
    let
      rel = if hasPrefix (root + "/") path then substring (stringLength root + 1) (-1) path else path;
      parts = filter isString (builtins.split "/" rel);
      top = head parts;
      base = builtins.baseNameOf path;
    in
    !(elem base [
      ".git"
      ".direnv"
    ])
    && !(
      length parts == 1
      && (
        elem top [
          "vendor"
          "nix"
          "examples"
          ".ci"
          ".cache"
          "flake.nix"
          "flake.lock"
          "result"
        ]
        || hasPrefix "result-" top
      )
    );

  # The Go release named by go.mod's `go` line ("1.26" for "go 1.26.0"), used
  # to pick nixpkgs' matching buildGo1XXModule.
  goVersion =
    goMod:
    let
      lines = filter isString (builtins.split "\n" goMod);
      found = concatMap (
        l:
        let
          m = match "go ([0-9]+)\\.([0-9]+)(\\.[0-9]+)?[[:space:]]*" l;
        in
        if m == null then [ ] else [ "${builtins.elemAt m 0}.${builtins.elemAt m 1}" ]
      ) lines;
    in
    if found == [ ] then throw "go.mod: no `go` directive found" else head found;

  # "1.26" -> "buildGo126Module"
  goModuleBuilderName =
    v:
    let
      parts = filter isString (builtins.split "\\." v);
    in
    "buildGo${concatStringsSep "" parts}Module";
}
