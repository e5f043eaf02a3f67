# A LUKS container whose passphrase is typed on the terminal (askPassword), which no
# layout of disko's corpus does: formatting asks for it twice, opening once. An
# additional key file is added with the typed passphrase.
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/vdb";
    content = {
      type = "gpt";
      partitions = {
        ESP = {
          size = "64M";
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
            name = "asked";
            askPassword = true;
            additionalKeyFiles = [ "/tmp/additionalSecret.key" ];
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
