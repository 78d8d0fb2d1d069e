package gallery

import (
	"encoding/json"
	"fmt"
	"time"
)

// manifest is a collection's snapshot: the segments that hold its faces,
// and the log events folded into them that may still be in the log (a
// reader skips those; the compaction that wrote the manifest deletes them
// once it is published).
type manifest struct {
	V          int          `json:"v"`
	Collection string       `json:"collection"`
	Created    time.Time    `json:"created"`
	Faces      int          `json:"faces"`
	Segments   []segmentRef `json:"segments"`
	Folded     []string     `json:"folded,omitempty"`
}

// maxSegmentFaces bounds the faces of a segment a reader accepts.
const maxSegmentFaces = 1 << 20

// segmentRef names a segment and what its objects must hold.
type segmentRef struct {
	ID    string `json:"id"`
	Faces int    `json:"faces"`
	// DescCRC and IndexCRC are the CRC-32C of the two objects: a truncated
	// or damaged object fails the load instead of misnaming faces.
	DescCRC  uint32 `json:"desc_crc32c"`
	IndexCRC uint32 `json:"index_crc32c"`
}

func (m manifest) validate(c string) error {
	if m.V != Version {
		return fmt.Errorf("manifest version %d, this build reads %d", m.V, Version)
	}
	if m.Collection != c {
		return fmt.Errorf("manifest of collection %q found under %q", m.Collection, c)
	}
	total := 0
	seen := map[string]bool{}
	for _, s := range m.Segments {
		if !isUUID(s.ID) || seen[s.ID] {
			return fmt.Errorf("manifest: segment id %q is not a UUID or is listed twice", s.ID)
		}
		seen[s.ID] = true
		if s.Faces < 1 || s.Faces > maxSegmentFaces {
			return fmt.Errorf("manifest: segment %s has %d faces, want 1..%d", s.ID, s.Faces, maxSegmentFaces)
		}
		total += s.Faces
	}
	if total != m.Faces {
		return fmt.Errorf("manifest: segments hold %d faces, manifest says %d", total, m.Faces)
	}
	for _, id := range m.Folded {
		if !isUUID(id) {
			return fmt.Errorf("manifest: folded event %q is not a UUID", id)
		}
	}
	return nil
}

func decodeManifest(c, key string, b []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	if err := m.validate(c); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	return &m, nil
}
