# A bare devices set, without disko.devices around it.
{ disk.main.device = "/dev/vda"; nodev."/tmp".fsType = "tmpfs"; }
