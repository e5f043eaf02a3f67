# STAND-IN for the NixOS options nix/module.nix reads or writes. NOT NixOS,
# but shaped like it where it matters for laziness: fileSystems,
# boot.initrd.luks.devices and swapDevices are attribute sets / lists of
# submodules, and `boot` is a tree of options (as NixOS declares it), so a
# definition whose attribute NAMES need a build (import-from-derivation)
# fails here as it does in NixOS. The entries' own options are free-form
# (whatever the module sets is kept as it is, so values can be compared with
# disko-compile's output). Evaluated with the REAL nixpkgs lib (NIXPKGS_LIB).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  freeform = types.submodule { freeformType = types.lazyAttrsOf types.anything; };
in
{
  options = {
    fileSystems = mkOption {
      type = types.attrsOf freeform;
      default = { };
    };
    swapDevices = mkOption {
      type = types.listOf freeform;
      default = [ ];
    };
    boot = {
      initrd = {
        luks.devices = mkOption {
          type = types.attrsOf freeform;
          default = { };
        };
        kernelModules = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        availableKernelModules = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        systemd.enable = mkOption {
          type = types.bool;
          default = false;
        };
      };
      resumeDevice = mkOption {
        type = types.str;
        default = "";
      };
      swraid.enable = mkOption {
        type = types.bool;
        default = false;
      };
      loader = {
        grub = {
          devices = mkOption {
            type = types.listOf types.str;
            default = [ ];
          };
          efiSupport = mkOption {
            type = types.bool;
            default = false;
          };
        };
        systemd-boot.enable = mkOption {
          type = types.bool;
          default = false;
        };
      };
      kernelPackages = mkOption {
        type = types.attrs;
        default = {
          kernel.version = "stand-in";
        };
      };
    };
    networking = {
      hostName = mkOption {
        type = types.str;
        default = "nixos";
      };
      hostId = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
    };
    system.build = mkOption {
      type = types.lazyAttrsOf types.unspecified;
      default = { };
    };
    system.checks = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
}
