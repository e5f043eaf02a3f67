# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-partlabel/disk-disk1-primary";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-disk1-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/zfs_fs" = {
      device = "zroot/root/zfs_fs";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
  };
  swapDevices = [ ];
}
