# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-uuid/88d9c058-757d-c06e-0fb7-a612f2db8a7a";
      fsType = "bcachefs";
      neededForBoot = true;
      options = [
        "X-mount.mkdir"
        "X-mount.subdir=subvolumes/root"
        "verbose"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-vdb-vdb1";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/home" = {
      device = "/dev/disk/by-uuid/88d9c058-757d-c06e-0fb7-a612f2db8a7a";
      fsType = "bcachefs";
      neededForBoot = true;
      options = [
        "X-mount.mkdir"
        "X-mount.subdir=subvolumes/home"
      ];
    };
    "/home/Documents" = {
      device = "/dev/disk/by-uuid/64e50034-ebe2-eaf8-1f93-cf56266a8d86";
      fsType = "bcachefs";
      neededForBoot = true;
      options = [
        "X-mount.mkdir"
      ];
    };
    "/nix" = {
      device = "/dev/disk/by-uuid/88d9c058-757d-c06e-0fb7-a612f2db8a7a";
      fsType = "bcachefs";
      neededForBoot = true;
      options = [
        "X-mount.mkdir"
        "X-mount.subdir=subvolumes/nix"
      ];
    };
  };
  swapDevices = [ ];
}
