# An xfs root mounted with quota options under the names mount(8) takes
# (pquota, uquota), which the kernel shows as prjquota and usrquota: the VM
# check must accept them (issue 18, item 14).
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/vdb";
    content = {
      type = "gpt";
      partitions.root = {
        size = "100%";
        content = {
          type = "filesystem";
          format = "xfs";
          mountpoint = "/";
          mountOptions = [ "pquota" "uquota" ];
        };
      };
    };
  };
}
