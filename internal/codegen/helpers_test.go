package codegen

import "context"

func contextBackground() context.Context { return context.Background() }
