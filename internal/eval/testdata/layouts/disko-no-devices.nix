{ disko.enableConfig = false; }
