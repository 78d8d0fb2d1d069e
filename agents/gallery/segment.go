package gallery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/face"
)

// A segment is part of a snapshot: up to SegmentFaces faces sorted by
// (person, id), stored as two objects. The descriptors are one binary
// object, n × 128 float32 little-endian, face after face, so a reader
// turns them into its search layout in one pass and a compaction copies
// the faces it keeps as bytes. The index holds, in the same order, each
// face's person, id, source, enrol request and time.

// segmentFaces is the most faces a compaction puts in one segment, 65,536:
// 32 MiB of descriptors, small enough to rewrite for one erasure and to
// load several at once, few enough for a million faces to be 16 objects.
// (A variable so that tests can exercise many segments with few faces.)
var segmentFaces = 1 << 16

// descBytes is the size of one stored descriptor.
const descBytes = face.DescriptorSize * 4

// chunkFaces is how many faces the search scans for one query before the
// next query of the same search: their 8-bit copy (256 KiB) stays in the
// core's cache for all the queries. (A variable for tests.)
var chunkFaces = 2048

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// indexMagic starts a segment index.
var indexMagic = []byte("FCIDX1\n\x00")

// mode says what a loaded segment keeps in memory.
type mode int

const (
	// forSearch keeps the descriptors as the search reads them, and per face
	// only its person and id (a worker).
	forSearch mode = iota
	// forIndex keeps every field of the index but no descriptor (a web host
	// listing faces and erasing them).
	forIndex
	// forRewrite keeps the index and the descriptors' bytes (a compaction).
	forRewrite
)

// segment is a set of faces sorted by (person, id), immutable once built.
type segment struct {
	id string
	n  int
	// names are the segment's persons, sorted; person[r] indexes names and
	// never decreases, as rows are sorted by person.
	names  []string
	person []uint32
	// ids holds the face ids back to back; row r's is ids[idEnd[r-1]:idEnd[r]].
	ids   []byte
	idEnd []uint32

	// forIndex and forRewrite.
	source, request []string
	enrolled        []int64 // Unix milliseconds

	// forSearch: the descriptors as 16-bit fixed point (scan.go), face
	// after face: the high bytes (the 8-bit copy the search scans), the low
	// bytes, each face's peak (scale·fixedMax); and each original's squared
	// norm.
	hi, lo []int8
	peak   []float32
	norms  []float32

	// forRewrite: the descriptors as stored.
	desc []byte
}

func (s *segment) faceID(r int) string {
	lo := uint32(0)
	if r > 0 {
		lo = s.idEnd[r-1]
	}
	return string(s.ids[lo:s.idEnd[r]])
}

func (s *segment) personOf(r int) string { return s.names[s.person[r]] }

// personRange is the rows of person: [lo, hi), empty when absent.
func (s *segment) personRange(person string) (lo, hi int) {
	pi, ok := slices.BinarySearch(s.names, person)
	if !ok {
		return 0, 0
	}
	lo = sort.Search(s.n, func(r int) bool { return s.person[r] >= uint32(pi) })
	hi = sort.Search(s.n, func(r int) bool { return s.person[r] > uint32(pi) })
	return lo, hi
}

// find returns the row of person's face id.
func (s *segment) find(person, id string) (int, bool) {
	lo, hi := s.personRange(person)
	r := lo + sort.Search(hi-lo, func(i int) bool { return s.faceID(lo+i) >= id })
	return r, r < hi && s.faceID(r) == id
}

// info is row r as listed.
func (s *segment) info(r int) FaceInfo {
	f := FaceInfo{Person: s.personOf(r), ID: s.faceID(r)}
	if s.source != nil {
		f.Source, f.Request = s.source[r], s.request[r]
		f.Enrolled = time.UnixMilli(s.enrolled[r]).UTC()
	}
	return f
}

// descriptor is row r's descriptor (forRewrite).
func (s *segment) descriptor(r int) face.Descriptor {
	var d face.Descriptor
	b := s.desc[r*descBytes : (r+1)*descBytes]
	for k := range d {
		d[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
	}
	return d
}

// FaceInfo is an enrolled face as listed (without its descriptor).
type FaceInfo struct {
	Person  string `json:"person"`
	ID      string `json:"id"`
	Source  string `json:"source,omitempty"`
	Request string `json:"request,omitempty"`
	// Enrolled is when the face was enrolled, to the millisecond.
	Enrolled time.Time `json:"enrolled,omitzero"`
}

// record is a face as a segment is built from it.
type record struct {
	FaceInfo
	// desc is the descriptor as stored (descBytes little-endian float32s).
	desc []byte
}

func entryRecord(e Entry) record {
	b := make([]byte, descBytes)
	for k, x := range e.Descriptor {
		binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(x))
	}
	return record{FaceInfo: FaceInfo{Person: e.Person, ID: e.ID, Source: e.Source, Request: e.Request, Enrolled: e.Enrolled.UTC().Truncate(time.Millisecond)}, desc: b}
}

func compareRecords(a, b record) int {
	if c := strings.Compare(a.Person, b.Person); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// encodeSegment lays out records (sorted by person and id) as the
// segment's two objects.
func encodeSegment(recs []record) (desc, index []byte) {
	desc = make([]byte, 0, len(recs)*descBytes)
	index = append([]byte(nil), indexMagic...)
	index = binary.AppendUvarint(index, uint64(len(recs)))
	str := func(s string) {
		index = binary.AppendUvarint(index, uint64(len(s)))
		index = append(index, s...)
	}
	for _, r := range recs {
		desc = append(desc, r.desc...)
		str(r.Person)
		str(r.ID)
		str(r.Source)
		str(r.Request)
		index = binary.AppendVarint(index, r.Enrolled.UnixMilli())
	}
	return desc, index
}

var errIndex = errors.New("malformed segment index")

// decodeSegment builds a segment from its objects; desc is nil in forIndex
// mode. The index must hold n faces sorted by (person, id).
func decodeSegment(id string, n int, desc, index []byte, m mode) (*segment, error) {
	if m != forIndex && len(desc) != n*descBytes {
		return nil, fmt.Errorf("segment %s: descriptors are %d bytes, want %d for %d faces", id, len(desc), n*descBytes, n)
	}
	rest, ok := bytes.CutPrefix(index, indexMagic)
	if !ok {
		return nil, fmt.Errorf("segment %s: %w: no magic", id, errIndex)
	}
	count, k := binary.Uvarint(rest)
	if k <= 0 || count != uint64(n) {
		return nil, fmt.Errorf("segment %s: %w: holds %d faces, manifest says %d", id, errIndex, count, n)
	}
	rest = rest[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(l)])
		rest = rest[k+int(l):]
		return s, true
	}
	s := &segment{id: id, n: n, person: make([]uint32, n), idEnd: make([]uint32, n)}
	if m != forSearch {
		s.source, s.request, s.enrolled = make([]string, n), make([]string, n), make([]int64, n)
	}
	var prevPerson, prevID string
	for r := range n {
		person, ok1 := str()
		fid, ok2 := str()
		source, ok3 := str()
		request, ok4 := str()
		ms, k := binary.Varint(rest)
		if !ok1 || !ok2 || !ok3 || !ok4 || k <= 0 {
			return nil, fmt.Errorf("segment %s: %w: face %d truncated", id, errIndex, r)
		}
		rest = rest[k:]
		if r > 0 && (person < prevPerson || person == prevPerson && fid <= prevID) {
			return nil, fmt.Errorf("segment %s: %w: faces not sorted at %d", id, errIndex, r)
		}
		if r == 0 || person != prevPerson {
			s.names = append(s.names, person)
		}
		prevPerson, prevID = person, fid
		s.person[r] = uint32(len(s.names) - 1)
		s.ids = append(s.ids, fid...)
		s.idEnd[r] = uint32(len(s.ids))
		if m != forSearch {
			s.source[r], s.request[r], s.enrolled[r] = source, request, ms
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("segment %s: %w: %d bytes after the last face", id, errIndex, len(rest))
	}
	s.ids = slices.Clip(s.ids)
	switch m {
	case forSearch:
		s.hi, s.lo, s.peak, s.norms = fixed(desc, n)
	case forRewrite:
		s.desc = desc
	}
	return s, nil
}

// buildSegment makes a segment of records sorted by (person, id).
func buildSegment(id string, recs []record, m mode) *segment {
	desc, index := encodeSegment(recs)
	if m == forIndex {
		desc = nil
	}
	s, err := decodeSegment(id, len(recs), desc, index, m)
	if err != nil {
		panic(fmt.Sprintf("gallery: a segment built here does not decode: %v", err)) // a bug, never the input
	}
	return s
}

// fixed converts n stored descriptors to the search's 16-bit fixed point.
func fixed(desc []byte, n int) (hi, lo []int8, peak, norms []float32) {
	const dim = face.DescriptorSize
	hi, lo = make([]int8, n*dim), make([]int8, n*dim)
	peak, norms = make([]float32, n), make([]float32, n)
	var x face.Descriptor
	for r := range n {
		b := desc[r*descBytes : (r+1)*descBytes]
		for k := range x {
			x[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
		}
		peak[r], norms[r] = quantise(&x, hi[r*dim:(r+1)*dim], lo[r*dim:(r+1)*dim])
	}
	return hi, lo, peak, norms
}

// fixedDistance2 is the squared distance from row r's 16-bit copy
// (forSearch) to a query given times fixedMax, in float64. It is computed
// at that scale, where both terms are exact, and divided once: a component
// at ±peak is then exactly the original.
func (s *segment) fixedDistance2(r int, q *[face.DescriptorSize]float64) float64 {
	const dim = face.DescriptorSize
	hi, lo := (*[dim]int8)(s.hi[r*dim:]), (*[dim]int8)(s.lo[r*dim:])
	p := float64(s.peak[r])
	var d2 float64
	for k, x := range q {
		t := x - float64(int32(hi[k])<<8+int32(lo[k]))*p
		d2 += t * t
	}
	return d2 / (fixedMax * fixedMax)
}
