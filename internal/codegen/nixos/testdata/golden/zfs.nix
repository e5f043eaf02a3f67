# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/" = {
      device = "zroot";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-x-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/ext4onzfs" = {
      device = "/dev/zvol/zroot/zfs_volume";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/ext4onzfsencrypted" = {
      device = "/dev/zvol/zroot/zfs_encryptedvolume";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/zfs_crypted" = {
      device = "zroot/encrypted/test";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
    "/zfs_fs" = {
      device = "zroot/zfs_fs";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
    "/zfs_legacy_fs" = {
      device = "zroot/zfs_legacy_fs";
      fsType = "zfs";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
