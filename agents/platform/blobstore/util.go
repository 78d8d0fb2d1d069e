package blobstore

import (
	"io"
	"slices"
)

// errEOF is what blob.ListIterator.Next returns after the last object.
var errEOF = io.EOF

func sortStrings(s []string) { slices.Sort(s) }
