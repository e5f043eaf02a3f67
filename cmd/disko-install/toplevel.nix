# The system disko-install installs: nixosConfigurations.NAME of the flake, extended
# as disko's install-cli.nix extends it (EFI variables only with
# --write-efi-boot-entries, GRUB on the mapped disks, --system-config merged in).
# A configuration without extendModules (not made by nixpkgs.lib.nixosSystem) is
# built as it is; the Go side refuses the flags that would need extending it.
# A toplevel that is already a store path (builtins.storePath) is used as it is.
{ flake, name, efi, disks, systemConfig }:
let
  system = (builtins.getFlake flake).nixosConfigurations.${name};
  installSystem =
    if system ? extendModules then
      system.extendModules {
        modules = [
          ({ lib, ... }: {
            boot.loader.efi.canTouchEfiVariables = lib.mkVMOverride efi;
            boot.loader.grub.devices = lib.mkVMOverride (builtins.fromJSON disks);
            imports = [ ({ _file = "disko-install --system-config"; } // builtins.fromJSON systemConfig) ];
          })
        ];
      }
    else system;
  toplevel = installSystem.config.system.build.toplevel;
  isDerivation = builtins.isAttrs toplevel && toplevel.type or "" == "derivation";
in
{
  # What the Go side asks first (nix-instantiate --eval -A info): whether the
  # configuration could be extended, and a toplevel that needs no build (a store
  # path, as builtins.storePath gives) as it is.
  info = {
    extendable = system ? extendModules;
    prebuilt = if isDerivation then null else toString toplevel;
  };
  inherit toplevel;
}
