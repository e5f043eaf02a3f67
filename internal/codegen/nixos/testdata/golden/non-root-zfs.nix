# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-partlabel/disk-x-root";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-x-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/storage" = {
      device = "storage";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
    "/storage/dataset" = {
      device = "storage/dataset";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
    "/storage2/dataset" = {
      device = "storage2/dataset";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
  };
  swapDevices = [ ];
}
