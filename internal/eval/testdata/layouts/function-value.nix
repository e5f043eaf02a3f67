# Nix prints partial JSON ({"disk":{"x":) before failing on the function.
{ disko.devices.disk.x = y: y; }
