# NixOS module: a drop-in for disko's `disko.*` options.
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
  lib,
  pkgs,
  ...
}:
let
  cfg = config.disko;
  pure = import ./lib.nix;
  diskoTypes = import ./types.nix { inherit lib; };

  compiled = import ./compile.nix {
    inherit pkgs;
    inherit (cfg) package rootMountPoint checkScripts;
    devices = cfg.devices;
  };

  empty = pure.isEmpty cfg.devices;

  # The NixOS config the layout implies, from the committed file or by IFD.
  nixosConfig =
    if empty then
      { }
    else if cfg.generatedConfig != null then
      import cfg.generatedConfig
    else
      builtins.fromJSON (builtins.readFile "${compiled.nixosConfig}/nixos-config.json");
  split = pure.splitNixosConfig nixosConfig;

  requireDisks = _: v: if pure.hasDisks cfg.devices then v else throw pure.noDisksMessage;

  deprecated = builtins.listToAttrs (
    map (d: {
      name = d.attr;
      value = builtins.trace "the .${d.attr} output is deprecated, please use .${d.target} instead" compiled.scripts.${d.target};
    }) pure.deprecatedScripts
  );
in
{
  options.disko = {
    devices = lib.mkOption {
      type = diskoTypes.devices;
      default = { };
      description = ''
        The disk layout: the same tree as disko's `disko.devices` (disk,
        mdadm, zpool, lvm_vg, nodev, bcachefs_filesystems). Definitions
        from several modules merge as in disko. The tree is plain data,
        validated by `disko-compile` when the scripts are built; errors name
        the option path.
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
      '';
    };
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
          diskoGeneratedConfigDiff = pure.diffValues (import cfg.generatedConfig) (
            builtins.fromJSON (builtins.readFile "${compiled.nixosConfig}/nixos-config.json")
          );
        };
    }

    (lib.mkIf (cfg.enableConfig && cfg.generatedConfig != null && !empty) {
      system.checks = [ (compiled.checkGenerated cfg.generatedConfig) ];
    })

    (lib.mkIf cfg.enableConfig {
      assertions = [
        {
          assertion = split.unknown == [ ];
          message = "disko: disko-compile set NixOS options this module does not apply: ${builtins.concatStringsSep ", " split.unknown} (known: ${builtins.concatStringsSep ", " pure.nixosConfigKeys})";
        }
      ];
      # Named statically: computing the names from the config would be
      # infinite recursion (as in disko's module).
      fileSystems = split.known.fileSystems or { };
      swapDevices = split.known.swapDevices or [ ];
      boot = split.known.boot or { };
      networking = split.known.networking or { };
    })
  ];
}
