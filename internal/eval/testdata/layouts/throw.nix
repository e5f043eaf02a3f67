{
  disko.devices.disk.main.device = throw "no disk configured for this host";
}
