# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    initrd = {
      kernelModules = [
        "dm-snapshot"
        "dm-raid0"
        "dm-mirror"
        "dm-raid"
        "raid0"
        "dm-mirror"
      ];
    };
    swraid = {
      enable = true;
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/pool/root";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/boot" = {
      device = "/dev/md/boot";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/home" = {
      device = "/dev/pool/home";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
