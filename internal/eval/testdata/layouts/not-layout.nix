{ foo = 1; bar.disk = { }; }
