# NixOS module: a drop-in for disko's `disko.*` options.
#
# Evaluation builds nothing unless a value that only the compiler knows is
# read: the attribute NAMES this module defines (fileSystems mount points,
# LUKS device names, system.build names, the option tree of disko.devices)
# are computed in Nix from the layout and the schema; only leaf VALUES
# (a mount's device, a computed partition label) come from the compiler.
# NixOS declares fileSystems, boot, swapDevices as option trees, so an
# attribute set whose names needed a build would make every evaluation that
# touches `boot.*` build the compiler.
#
# `disko.devices` takes the same tree as disko (see types.nix for how
# definitions from several modules merge). The tree is serialised with
# `builtins.toJSON` and compiled by `disko-compile` in a derivation, which
# yields the scripts under the `system.build` names disko and nixos-anywhere
# use, and the NixOS config (fileSystems, swapDevices, boot.*).
#
# Applying that NixOS config means reading a build result during evaluation:
# import-from-derivation (IFD). It works everywhere IFD is allowed (the
# default of Nix), but evaluation then waits for disko-compile to be built or
# substituted, and it fails where IFD is disabled (Hydra, some CI, `nix flake
# check --no-allow-import-from-derivation`). The IFD-free path: generate the
# config once, commit it, and point `disko.generatedConfig` at it:
#
#   disko-compile nixos-config --nix ./disk-config.nix > disk-config.generated.nix
#   disko.generatedConfig = ./disk-config.generated.nix;
#
# The module then imports that file (a plain source file, no IFD) and adds a
# build-time check (system.checks, so building the system runs it) that fails
# when the file no longer matches what disko-compile gives for the current
# `disko.devices`. See nix/README.md.
{
  config,
  options,
  lib,
  pkgs,
  extendModules,
  ...
}:
let
  cfg = config.disko;
  pure = import ./lib.nix;
  diskoTypes = import ./types.nix { inherit lib; };
  # The option names and static defaults of every node type, generated from
  # the Go model (internal/config) and drift-checked like the docs.
  schema = builtins.fromJSON (builtins.readFile ../schema/disko.schema.json);

  # The merged definitions of disko.devices as plain data, without the
  # defaults that config.disko.devices shows: what the compiler reads.
  devicesOption = options.disko.devices;
  raw = (lib.mergeDefinitions devicesOption.loc devicesOption.type devicesOption.definitionsWithLocations).mergedValue;

  compiled = import ./compile.nix {
    inherit pkgs;
    inherit (cfg) package rootMountPoint checkScripts;
    devices = raw;
  };

  empty = pure.isEmpty raw;

  # Read from a build result (import-from-derivation): forced only when a
  # value below is read, never to learn an attribute name.
  fromBuild = file: builtins.fromJSON (builtins.readFile "${compiled.nixosConfig}/${file}");

  # The NixOS config the layout implies, from the committed file or by IFD.
  nixosConfig = if cfg.generatedConfig != null then import cfg.generatedConfig else fromBuild "nixos-config.json";
  split = pure.splitNixosConfig nixosConfig;
  shape = pure.nixosShape raw;
  on = cfg.enableConfig && !empty;

  requireDisks = _: v: if pure.hasDisks raw then v else throw pure.noDisksMessage;

  deprecated = builtins.listToAttrs (
    map (d: {
      name = d.attr;
      value = builtins.trace "the .${d.attr} output is deprecated, please use .${d.target} instead" compiled.scripts.${d.target};
    }) pure.deprecatedScripts
  );

  # The installed system and disk script with the layout's disks on the test
  # VM's disks (/dev/vda, /dev/vdb, ... in disk-name order, as `anywhere
  # --vm-test` attaches them), as disko's installTest re-points the disks.
  diskNames = builtins.attrNames (raw.disk or { });
  vmDisks = {
    disko.devices.disk = builtins.listToAttrs (
      builtins.genList (i: {
        name = builtins.elemAt diskNames i;
        value.device = lib.mkVMOverride "/dev/vd${builtins.substring i 1 "abcdefghijklmnopqrstuvwxyz"}";
      }) (builtins.length diskNames)
    );
  };
  vmSystem = extendModules { modules = [ vmDisks ]; };
  # vmWithDisko's system: the VM's disks plus virtualisation.vmVariantWithDisko,
  # whose value is that extended configuration (as disko and NixOS's vmVariant do).
  vmVariant = config.virtualisation.vmVariantWithDisko;

  systemBuilds = import ./system-builds.nix {
    inherit pkgs;
    inherit (cfg) package;
    anywhere = import ./package.nix {
      pkgs = pkgs.buildPackages;
      commands = [ "anywhere" ];
      pname = "anywhere";
    };
    devices = raw;
    toplevel = config.system.build.toplevel;
    inherit (cfg.imageBuilder)
      name
      imageFormat
      copyNixStore
      extraPostVM
      extraDependencies
      ;
    inherit (cfg) memSize;
    vmCompiled = vmSystem.config.system.build.diskoCompiled;
    vmToplevel = vmSystem.config.system.build.toplevel;
    vmWithDiskoCompiled = vmVariant.system.build.diskoCompiled;
    vmWithDiskoToplevel = vmVariant.system.build.toplevel;
  };

  diskoBuilds = {
    inherit (systemBuilds) installTest diskoImages diskoImagesScript vmWithDisko;
  };

  # disko options accepted with disko's type and default that have no effect
  # yet, and the feature that will give them one: a warning when set.
  # imageBuilder.{name, imageFormat, copyNixStore, extraPostVM,
  # extraDependencies} take effect in diskoImages / diskoImagesScript.
  vmImageOptions = [
    "enableBinfmt"
    "qemu"
    "pkgs"
    "kernelPackages"
    "extraRootModules"
    "copyNixStoreThreads"
    "extraConfig"
  ];
  pendingOptions = map (p: { path = p; feature = "disk image building in a VM (images are built without one)"; }) (
    map (n: [ "disko" "imageBuilder" n ]) vmImageOptions
  )
  ++ map (p: { path = p; feature = "disko's NixOS-test VM tests (installTest runs anywhere --vm-test)"; }) (
    map (n: [ "disko" "tests" n ]) (builtins.attrNames options.disko.tests)
    ++ [
      [ "disko" "testMode" ]
    ]
  );
  isSet = path: (lib.attrByPath path { } options).highestPrio or 1500 < 1500;

  pendingNote = feature: "Accepted for compatibility with disko; has no effect yet (needs ${feature}); setting it prints a warning.";
in
{
  # Importing disko's module as well declares every disko.* option twice; the
  # module system then reports "The option `disko.…' in `<disko's file>' is
  # already declared in `<this name>'", so this name says what to do.
  _file = "${toString ./module.nix} (diskoanywhere's module, which replaces disko's: drop disko.nixosModules.disko from the imports)";

  options.disko = {
    devices = lib.mkOption {
      type = diskoTypes.devices;
      default = { };
      apply = _: pure.resolveDevices schema raw (fromBuild "resolved.json");
      description = ''
        The disk layout: the same tree as disko's `disko.devices` (disk,
        mdadm, zpool, lvm_vg, nodev, bcachefs_filesystems). Definitions
        from several modules merge as in disko. Reading it shows every
        option of every node with its default, as disko does: static
        defaults (imageSize "2G", ...) from the schema, computed ones (device
        paths, labels, names) from `disko-compile json`, built only when such
        a value is read. An option name a node does not have is an error
        naming the option path.
      '';
    };

    enableConfig = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Apply the NixOS configuration the layout implies (fileSystems,
        swapDevices, boot.initrd.luks.devices, ...). True when the system
        boots from these disks; false on an installer image that only carries
        the scripts.
      '';
    };

    rootMountPoint = lib.mkOption {
      type = lib.types.str;
      default = "/mnt";
      description = "Where the mount scripts mount the layout's root.";
    };

    checkScripts = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Run shellcheck on the generated scripts when building them.";
    };

    package = lib.mkOption {
      type = lib.types.package;
      default = import ./package.nix {
        pkgs = pkgs.buildPackages;
        commands = [ "disko-compile" ];
        pname = "disko-compile";
      };
      defaultText = lib.literalExpression "disko-compile built from this repository with pkgs.buildPackages";
      description = "The disko-compile package that compiles the layout (runs at build time).";
    };

    generatedConfig = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = lib.literalExpression "./disk-config.generated.nix";
      description = ''
        A file written by `disko-compile nixos-config --nix LAYOUT`. When
        set, the NixOS config is imported from it instead of being read from
        a build result during evaluation (import-from-derivation), and
        `system.build.diskoGeneratedConfigCheck` (also in `system.checks`)
        fails the build when the file no longer matches `disko.devices`.
        Use it where import-from-derivation is disabled (Hydra, `nix flake
        check` in restricted mode).
      '';
    };

    memSize = lib.mkOption {
      type = lib.types.int;
      default = 1024;
      description = "Memory (MiB) of the VM of system.build.vmWithDisko.";
    };

    testMode = lib.mkOption {
      type = lib.types.bool;
      default = false;
      internal = true;
      description = "True when the system runs in a VM test or the interactive VM. ${pendingNote "disko's NixOS-test VM tests"}";
    };

    imageBuilder = {
      enableBinfmt = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Emulate foreign-architecture binaries in the image builder. ${pendingNote "disk image building in a VM"}";
      };
      qemu = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        description = "The qemu emulator the image builder runs. ${pendingNote "disk image building in a VM"}";
      };
      pkgs = lib.mkOption {
        type = lib.types.attrs;
        default = pkgs;
        defaultText = lib.literalExpression "pkgs";
        description = "The package set of the image builder. ${pendingNote "disk image building in a VM"}";
      };
      kernelPackages = lib.mkOption {
        type = lib.types.attrs;
        default = config.boot.kernelPackages;
        defaultText = lib.literalExpression "config.boot.kernelPackages";
        description = "The kernel of the image builder. ${pendingNote "disk image building in a VM"}";
      };
      extraRootModules = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "bcachefs" ];
        description = "Extra kernel modules of the image builder. ${pendingNote "disk image building in a VM"}";
      };
      extraPostVM = lib.mkOption {
        type = lib.types.lines;
        default = ":";
        description = "Shell code run in system.build.diskoImages after `disko-compile image` wrote the images to $out.";
      };
      extraDependencies = lib.mkOption {
        type = lib.types.listOf lib.types.package;
        default = [ ];
        description = "Extra packages on the PATH of system.build.diskoImages and diskoImagesScript.";
      };
      name = lib.mkOption {
        type = lib.types.str;
        default = "${config.networking.hostName}-disko-images";
        defaultText = "\${config.networking.hostName}-disko-images";
        description = "Name of system.build.diskoImages (the images inside are named after the disks' imageName).";
      };
      copyNixStore = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Copy the system's closure into the images and install its bootloader (`disko-compile image --system`).";
      };
      copyNixStoreThreads = lib.mkOption {
        type = lib.types.either lib.types.ints.positive (lib.types.enum [ "auto" ]);
        default = "auto";
        example = 4;
        description = "Parallel threads copying the store (\"auto\": CPU cores, at most 8). ${pendingNote "disk image building in a VM"}";
      };
      extraConfig = lib.mkOption {
        default = { };
        description = "Extra NixOS config of the system installed in the images. ${pendingNote "disk image building in a VM"}";
      };
      imageFormat = lib.mkOption {
        type = lib.types.enum [
          "raw"
          "qcow2"
        ];
        default = "raw";
        description = "QEMU image format of the disk images (`disko-compile image --format`).";
      };
    };

    tests = {
      bootCommands = lib.mkOption {
        type = lib.types.lines;
        default = "";
        description = "Python test commands run while the test machine boots (e.g. typing a passphrase). ${pendingNote "disko's NixOS-test VM tests"}";
      };
      efi = lib.mkOption {
        type = lib.types.bool;
        default = config.boot.loader.systemd-boot.enable || config.boot.loader.grub.efiSupport;
        defaultText = "config.boot.loader.systemd-boot.enable || config.boot.loader.grub.efiSupport";
        description = "Boot the install test with UEFI. ${pendingNote "disko's NixOS-test VM tests"}";
      };
      enableOCR = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Enable OCR in the install test. ${pendingNote "disko's NixOS-test VM tests"}";
      };
      extraChecks = lib.mkOption {
        type = lib.types.lines;
        default = "";
        description = "Extra Python checks of the install test. ${pendingNote "disko's NixOS-test VM tests"}";
      };
      extraConfig = lib.mkOption {
        default = { };
        description = "Extra NixOS config of the install test's machine. ${pendingNote "disko's NixOS-test VM tests"}";
      };
    };
  };

  options.virtualisation.vmVariantWithDisko = lib.mkOption {
    inherit ((extendModules { modules = [ vmDisks ]; })) type;
    default = { };
    visible = "shallow";
    description = "Machine configuration added for system.build.vmWithDisko, whose system this is (with the layout's disks on the VM's /dev/vda, /dev/vdb, ...).";
  };

  config = lib.mkMerge [
    {
      system.build =
        builtins.mapAttrs requireDisks (compiled.scripts // deprecated)
        // {
          diskoCompiled = compiled;
          diskoNixosConfig = compiled.nixosConfig;
        }
        // lib.optionalAttrs (cfg.generatedConfig != null) {
          diskoGeneratedConfigCheck = compiled.checkGenerated cfg.generatedConfig;
          # On demand (this one is IFD): nix eval ...system.build.diskoGeneratedConfigDiff
          diskoGeneratedConfigDiff = pure.diffValues (import cfg.generatedConfig) (fromBuild "nixos-config.json");
        }
        // builtins.mapAttrs (_: lib.mkDefault) diskoBuilds;

      warnings = map (
        o: "${lib.showOption o.path} is set, but diskoanywhere's module does not implement ${o.feature} yet: the setting has no effect"
      ) (builtins.filter (o: isSet o.path) pendingOptions);

      assertions =
        let
          typos = pure.unknownOptions schema raw;
        in
        [
          {
            assertion = typos == [ ];
            message = "disko.devices: these options do not exist: ${builtins.concatStringsSep ", " typos}";
          }
        ];
    }

    (lib.mkIf (on && cfg.generatedConfig != null) {
      system.checks = [ (compiled.checkGenerated cfg.generatedConfig) ];
    })

    (lib.mkIf on {
      assertions = [
        {
          assertion = split.unknown == [ ];
          message = "disko: disko-compile set NixOS options this module does not apply: ${builtins.concatStringsSep ", " split.unknown} (known: ${builtins.concatStringsSep ", " pure.nixosConfigKeys})";
        }
        {
          assertion = pure.shapeOf nixosConfig == shape;
          message = "disko: the NixOS config from disko-compile (${builtins.toJSON (pure.shapeOf nixosConfig)}) does not have the shape this module predicted from the layout (${builtins.toJSON shape}); this is a bug of nix/lib.nix nixosShape";
        }
      ];
    })

    # Every name below is computed from the layout alone; the values come
    # from the compiler (or generatedConfig) and are read only when used.
    {
      fileSystems = lib.mkIf on (
        # fsType and neededForBoot are known from the layout: NixOS reads
        # every mount's fsType (boot.supportedFilesystems) for much else.
        builtins.mapAttrs (
          mp: known:
          lib.genAttrs known.keys (
            k:
            if k == "fsType" then
              known.fsType
            else if k == "neededForBoot" then
              known.neededForBoot
            else
              nixosConfig.fileSystems.${mp}.${k}
          )
        ) shape.fileSystems
      );
      boot.initrd.luks.devices = lib.mkIf on (
        builtins.mapAttrs (name: keys: lib.genAttrs keys (k: nixosConfig.boot.initrd.luks.devices.${name}.${k})) shape.luksDevices
      );
      boot.initrd.kernelModules = lib.mkIf (on && shape.kernelModules) nixosConfig.boot.initrd.kernelModules;
      boot.resumeDevice = lib.mkIf (on && shape.resumeDevice) nixosConfig.boot.resumeDevice;
      boot.swraid.enable = lib.mkIf (on && shape.swraid) true;
      boot.loader.grub.devices = lib.mkIf (on && shape.grubDevices) nixosConfig.boot.loader.grub.devices;
      swapDevices = lib.mkIf (on && shape.swapDevices) nixosConfig.swapDevices;
    }
  ];
}
