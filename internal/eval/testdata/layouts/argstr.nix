# A layout whose disk device can be set with --argstr device /dev/...
{ device ? "/dev/vda", ... }:
{
  disko.devices.disk.main = {
    inherit device;
    type = "disk";
  };
}
