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
  # disko.devices.disk.main.extraArgs[1], as the compiler writes option paths.
  showPath =
    path:
    foldl' (acc: seg: if acc == "" then seg else if hasPrefix "[" seg then acc + seg else "${acc}.${seg}") "" path;
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
  ]
  ++ diskoBuildAttrNames;

  # disko's image and VM-test outputs (nix/system-builds.nix; vmWithDisko is
  # still a derivation that fails naming the missing feature).
  diskoBuildAttrNames = [
    "installTest"
    "vmWithDisko"
    "diskoImages"
    "diskoImagesScript"
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
  # `config.disko.devices` as disko shows it: every option of every node
  # present, with its default. The option NAMES come from the JSON Schema
  # (schema/disko.schema.json, generated from the Go model and drift-checked),
  # so the structure is known without building anything; a default is a
  # static one from the schema, or else the value `disko-compile json`
  # computed (device paths, labels, names, priorities): `computed` is only
  # forced when such a value is read. An option name the schema does not know
  # is an error naming the option path.

  schemaDef =
    schema: ref:
    let
      m = match "#/\\$defs/(.*)" ref;
    in
    if m == null then throw "disko: unsupported schema reference ${ref}" else schema."$defs".${head m};

  # The node definition a property holds, chosen by the value's `type` when
  # the slot is a union (content slots, zpool datasets); null for a leaf.
  nodeDefFor =
    schema: prop: raw:
    let
      refs = filter (x: x ? "$ref") (prop.oneOf or prop.anyOf or [ ]);
      defs = map (r: schemaDef schema r."$ref") refs;
      byType = filter (d: (d.properties.type.const or null) == (raw.type or null)) defs;
    in
    if !isAttrs raw || isDerivationLike raw then
      null
    else if prop ? "$ref" then
      schemaDef schema prop."$ref"
    else if length defs == 1 then
      head defs
    else if defs == [ ] then
      null
    else if byType != [ ] then
      head byType
    else
      { unknownType = map (d: d.properties.type.const or "?") defs; };

  # The element schema of a map (additionalProperties) or list (items) that
  # holds nodes; null for free-form maps and lists of plain values.
  elementProp =
    prop: key:
    let
      e = prop.${key} or null;
    in
    if isAttrs e && (e ? "$ref" || e ? oneOf) then e else null;

  # Why a plain value does not fit a leaf option of the schema (its JSON
  # `type` and `enum`, and the type of a list's elements), or null when it
  # does. Patterns (sizes, ...) are left to the compiler, which reports them
  # with the option path when the layout is compiled.
  jsonTypeOf =
    v:
    if isString v then
      "string"
    else if builtins.isBool v then
      "boolean"
    else if builtins.isInt v then
      "integer"
    else if builtins.isFloat v then
      "number"
    else if isList v then
      "array"
    else if isAttrs v then
      "object"
    else if v == null then
      "null"
    else
      typeOf v;
  leafProblem =
    prop: v:
    let
      allowed = if prop ? type then (if isList prop.type then prop.type else [ prop.type ]) else null;
      t = jsonTypeOf v;
      fits = allowed == null || elem t allowed || (t == "integer" && elem "number" allowed);
      elemType = prop.items.type or null;
      badElems = if isList v && isString elemType then filter (e: jsonTypeOf e != elemType) v else [ ];
    in
    if !fits then
      "has type ${t}, expected ${concatStringsSep " or " allowed}"
    else if prop ? enum && !(elem v prop.enum) then
      "is ${builtins.toJSON v}, expected one of ${concatStringsSep ", " (map builtins.toJSON prop.enum)}"
    else if prop ? const && v != prop.const then
      "is ${builtins.toJSON v}, expected ${builtins.toJSON prop.const}"
    else if badElems != [ ] then
      "has an element ${builtins.toJSON (head badElems)}, expected a list of ${elemType}"
    else
      null;

  # What disko shows for an unset list or attribute-set option the compiler
  # leaves out of its output (it omits empty ones): [ ] or { }, else null.
  emptyOf =
    prop:
    let
      types = if isList (prop.type or null) then prop.type else [ (prop.type or null) ];
    in
    if elem "array" types then
      [ ]
    else if elem "object" types then
      { }
    else
      null;

  nodeSlot = prop: prop ? "$ref" || builtins.any (x: x ? "$ref") (prop.oneOf or prop.anyOf or [ ]);

  resolveValue =
    schema: path: prop: raw: computed:
    let
      def = nodeDefFor schema prop raw;
      mapElem = elementProp prop "additionalProperties";
      listElem = elementProp prop "items";
    in
    if def != null then
      resolveNode schema path def raw computed
    else if mapElem != null && isAttrs raw && !(isDerivationLike raw) then
      mapAttrs (k: v: resolveValue schema (path ++ [ k ]) mapElem v (computed.${k} or null)) raw
    else if listElem != null && isList raw then
      builtins.genList (
        i: resolveValue schema (path ++ [ "[${toString i}]" ]) listElem (builtins.elemAt raw i) (builtins.elemAt computed i)
      ) (length raw)
    else if mapElem == null && listElem == null && leafProblem prop raw != null then
      throw "The option `${showPath path}' ${leafProblem prop raw}"
    else
      raw;

  resolveNode =
    schema: path: def: raw: computed:
    let
      props = def.properties or { };
      unknown = filter (k: !(props ? ${k}) && !(hasPrefix "_" k)) (attrNames raw);
      internal = filter (hasPrefix "_") (attrNames raw);
    in
    if def ? unknownType then
      throw "The option `${showPath (path ++ [ "type" ])}' has the value ${builtins.toJSON (raw.type or null)}, which is not one of ${concatStringsSep ", " def.unknownType}"
    else if unknown != [ ] then
      throw "The option `${showPath (path ++ [ (head unknown) ])}' does not exist. A ${def.title or "node"} node has: ${concatStringsSep ", " (sort (attrNames props))}"
    else
      mapAttrs (
        k: prop:
        if raw ? ${k} then
          resolveValue schema (path ++ [ k ]) prop raw.${k} (computed.${k} or null)
        else if prop ? default then
          prop.default
        # the compiler never adds nodes: an absent node slot stays empty,
        # so reading one builds nothing
        else if nodeSlot prop then
          null
        else if elementProp prop "additionalProperties" != null then
          { }
        else if elementProp prop "items" != null then
          [ ]
        else
          computed.${k} or (emptyOf prop)
      ) props
      // listToAttrs (
        map (k: {
          name = k;
          value = raw.${k};
        }) internal
      );

  # The whole tree: `raw` is the merged `disko.devices` (plain data, as the
  # compiler reads it), `computed` the compiler's `json` output for it.
  resolveDevices =
    schema: raw: computed:
    resolveNode schema [ "disko" "devices" ] (schemaDef schema "#/$defs/Devices") (normalize raw) computed;

  # Every option path of `raw` the schema does not know or whose value does
  # not fit its type, without building anything (the module's assertion
  # lists them all at once).
  unknownOptions =
    schema:
    let
      value =
        path: prop: raw:
        let
          def = nodeDefFor schema prop raw;
          mapElem = elementProp prop "additionalProperties";
          listElem = elementProp prop "items";
        in
        if def != null then
          node path def raw
        else if mapElem != null && isAttrs raw then
          concatMap (k: value (path ++ [ k ]) mapElem raw.${k}) (attrNames raw)
        else if listElem != null && isList raw then
          concatMap (i: value (path ++ [ "[${toString i}]" ]) listElem (builtins.elemAt raw i)) (
            builtins.genList (i: i) (length raw)
          )
        else if mapElem == null && listElem == null && leafProblem prop raw != null then
          [ "${showPath path} (${leafProblem prop raw})" ]
        else
          [ ];
      node =
        path: def: raw:
        let
          props = def.properties or { };
        in
        if def ? unknownType then
          [ "${showPath (path ++ [ "type" ])} (${builtins.toJSON (raw.type or null)} is not one of ${concatStringsSep ", " def.unknownType})" ]
        else
          concatMap (
            k:
            if hasPrefix "_" k then
              [ ]
            else if props ? ${k} then
              value (path ++ [ k ]) props.${k} raw.${k}
            else
              [ (showPath (path ++ [ k ])) ]
          ) (attrNames raw);
    in
    raw: node [ "disko" "devices" ] (schemaDef schema "#/$defs/Devices") (normalize raw);

  # ---------------------------------------------------------------------
  # The shape of the NixOS config a layout implies, computed from the layout
  # alone (no build): which mount points, LUKS devices and boot options
  # `disko-compile nixos-config` will set. The module defines exactly these
  # names and reads only their VALUES from the compiler, so evaluating
  # anything else (another option, `attrNames config.system.build`) never
  # builds the compiler. It follows internal/codegen/nixos; the module's
  # assertion and TestNixosShape check it against the compiler's output.
  nixosShape =
    layout:
    let
      devices = normalize layout;
      set = v: v != null && v != "";
      values = v: if isAttrs v then builtins.attrValues v else if isList v then v else [ ];
      # A fileSystems entry: its name, and what is known of it without the
      # compiler (fsType, and neededForBoot, which disko sets for bcachefs).
      mount =
        mp: fsType:
        if set mp then
          [
            {
              fs = mp;
              inherit fsType;
              neededForBoot = false;
            }
          ]
        else
          [ ];
      bcachefsMount =
        mp:
        map (
          m:
          m
          // {
            neededForBoot = true;
          }
        ) (mount mp "bcachefs");
      swapfiles = mp: files: if set mp && values files != [ ] then [ "swap" ] else [ ];
      content =
        n:
        if !isAttrs n then
          [ ]
        else
          let
            t = n.type or null;
          in
          if t == "gpt" then
            concatMap (p: content (p.content or null)) (values (n.partitions or { }))
            ++ (if builtins.any (p: (p.type or null) == "EF02") (values (n.partitions or { })) then [ "grub" ] else [ ])
          else if t == "table" then
            concatMap (p: content (p.content or null)) (values (n.partitions or [ ]))
          else if t == "filesystem" then
            mount (n.mountpoint or null) (n.format or null)
          else if t == "swap" then
            [ "swap" ] ++ (if n.resumeDevice or false then [ "resume" ] else [ ])
          else if t == "luks" then
            (
              if n.initrdUnlock or true then
                [
                  {
                    luks = n.name or "";
                    keys = sort (unique ([ "device" ] ++ attrNames (n.settings or { })));
                  }
                ]
              else
                [ ]
            )
            ++ content (n.content or null)
          else if t == "btrfs" then
            concatMap (
              sv:
              mount (sv.mountpoint or null) "btrfs"
              ++ swapfiles (sv.mountpoint or null) (sv.swap or { })
            ) (values (n.subvolumes or { }))
            ++ mount (n.mountpoint or null) "btrfs"
            ++ swapfiles (n.mountpoint or null) (n.swap or { })
          else
            [ ];
      zfsFs =
        mp: options:
        if (options.mountpoint or null) != "none" && (options.canmount or null) != "off" then mount mp "zfs" else [ ];
      items =
        concatMap (d: content (d.content or null)) (values (devices.disk or { }))
        ++ concatMap (
          vg: [ "kernelModules" ] ++ concatMap (lv: content (lv.content or null)) (values (vg.lvs or { }))
        ) (values (devices.lvm_vg or { }))
        ++ concatMap (md: [ "swraid" ] ++ content (md.content or null)) (values (devices.mdadm or { }))
        ++ concatMap (
          k:
          mount (devices.nodev.${k}.mountpoint or k) (devices.nodev.${k}.fsType or null)
        ) (attrNames (devices.nodev or { }))
        ++ concatMap (
          pool:
          zfsFs (pool.mountpoint or null) (pool.rootFsOptions or { })
          ++ concatMap (
            ds: if (ds.type or null) == "zfs_volume" then content (ds.content or null) else zfsFs (ds.mountpoint or null) (ds.options or { })
          ) (values (pool.datasets or { }))
        ) (values (devices.zpool or { }))
        ++ concatMap (
          fs:
          bcachefsMount (fs.mountpoint or null)
          ++ concatMap (sv: bcachefsMount (sv.mountpoint or null)) (values (fs.subvolumes or { }))
        ) (values (devices.bcachefs_filesystems or { }));
      flags = filter isString items;
      entries =
        key: f:
        listToAttrs (
          concatMap (
            i:
            if isAttrs i && i ? ${key} then
              [
                {
                  name = i.${key};
                  value = f i;
                }
              ]
            else
              [ ]
          ) items
        );
    in
    {
      # mount point -> { keys, fsType, neededForBoot }
      fileSystems = entries "fs" (i: {
        inherit (i) fsType neededForBoot;
        keys = sort ([ "device" "fsType" "options" ] ++ (if i.neededForBoot then [ "neededForBoot" ] else [ ]));
      });
      # LUKS device name -> its attribute names (device and the settings)
      luksDevices = entries "luks" (i: i.keys);
      swapDevices = elem "swap" flags;
      resumeDevice = elem "resume" flags;
      kernelModules = elem "kernelModules" flags;
      swraid = elem "swraid" flags;
      grubDevices = elem "grub" flags;
    };

  # The shape of a NixOS config as the compiler wrote it, in the terms of
  # nixosShape (the module asserts the two agree).
  shapeOf = cfg: {
    fileSystems = mapAttrs (_: fs: {
      keys = sort (attrNames fs);
      fsType = fs.fsType or null;
      neededForBoot = fs.neededForBoot or false;
    }) (cfg.fileSystems or { });
    luksDevices = mapAttrs (_: d: sort (attrNames d)) (cfg.boot.initrd.luks.devices or { });
    swapDevices = (cfg.swapDevices or [ ]) != [ ];
    resumeDevice = (cfg.boot or { }) ? resumeDevice;
    kernelModules = (cfg.boot.initrd or { }) ? kernelModules;
    swraid = cfg.boot.swraid.enable or false;
    grubDevices = (cfg.boot.loader.grub or { }) ? devices;
  };

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
  # (udevadm) and reads partition tables as JSON (sfdisk | jq). The rest is
  # disko's base set, kept for hooks.
  # internal/nixtest's TestToolsCoverScripts checks these lists against the
  # commands of the generated scripts.
  baseTools = [
    "bash"
    "coreutils"
    "util-linux"
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
