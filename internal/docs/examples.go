package docs

// workedExamples writes the section that shows what a few corpus layouts produce.
func workedExamples(d *document) error {
	return nil
}
