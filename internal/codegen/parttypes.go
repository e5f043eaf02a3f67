package codegen

import "github.com/diskoanywhere/diskoanywhere/internal/config"

// sgdiskTypes is config's table of sgdisk type codes: validation accepts exactly the codes
// the format script can translate.
var sgdiskTypes = config.SgdiskTypes
