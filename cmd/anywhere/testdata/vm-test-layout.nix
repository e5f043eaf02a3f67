# The layout of anywhere's --vm-test tests: an ESP and a LUKS container with
# an ext4 root on one small disk. The container's key is /tmp/secret.key
# during disko (--disk-encryption-keys) and an initrd secret at boot. A cheap
# key derivation keeps the unlocks short in a VM without KVM.
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/vda";
    imageSize = "1G";
    content = {
      type = "gpt";
      partitions = {
        ESP = {
          size = "100M";
          type = "EF00";
          content = {
            type = "filesystem";
            format = "vfat";
            mountpoint = "/boot";
            mountOptions = [ "umask=0077" ];
          };
        };
        luks = {
          size = "100%";
          content = {
            type = "luks";
            name = "crypted";
            settings.keyFile = "/tmp/secret.key";
            extraFormatArgs = [ "--pbkdf" "pbkdf2" "--pbkdf-force-iterations" "1000" ];
            content = {
              type = "filesystem";
              format = "ext4";
              mountpoint = "/";
            };
          };
        };
      };
    };
  };
}
