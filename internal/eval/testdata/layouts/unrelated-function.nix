# Only disko.devices is converted to JSON: the function elsewhere must not matter.
{
  disko.devices.disk.main.device = "/dev/vda";
  services.foo.hook = x: x;
}
