package gallery

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/imagefiles"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// Describer computes the faces of an encoded image; the CLI and the worker
// wrap the face engine in one.
type Describer interface {
	Describe(ctx context.Context, image []byte) (face.Recognition, error)
}

// ErrNoFace means an enrolment image had no face in it.
var ErrNoFace = errors.New("no face found")

// Enroll describes image and adds its largest face to collection c as
// person under id (ContentID(image) when id is empty, so enrolling the same
// image again replaces the face instead of adding one). source names the
// image in the entry. The largest face is taken when there are several: an
// enrolment photo is of one person, others in the background are smaller.
func Enroll(ctx context.Context, store platform.Store, d Describer, c, person, id, source string, image []byte) (Entry, face.Recognition, error) {
	if err := job.ValidPerson(person); err != nil {
		return Entry{}, face.Recognition{}, err
	}
	if err := ValidCollection(c); err != nil {
		return Entry{}, face.Recognition{}, err
	}
	rec, err := d.Describe(ctx, image)
	if err != nil {
		return Entry{}, rec, err
	}
	if len(rec.Faces) == 0 {
		return Entry{}, rec, fmt.Errorf("%w in %dx%d image", ErrNoFace, rec.Width, rec.Height)
	}
	if id == "" {
		id = ContentID(image)
	}
	e := Entry{V: Version, Person: person, ID: id, Source: source, Descriptor: rec.Faces[0].Descriptor, Enrolled: time.Now().UTC()}
	if err := e.Validate(); err != nil {
		return Entry{}, rec, err
	}
	if err := AddFace(ctx, store, c, e); err != nil {
		return Entry{}, rec, err
	}
	return e, rec, nil
}

// Labelled is an image and the person in it.
type Labelled struct {
	Person string
	Image  imagefiles.File
}

// FromFolders lists root/<person>/<image> for every person folder; files
// that are not images by extension, and hidden entries, are skipped.
func FromFolders(root string) ([]Labelled, error) {
	people, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("enrol folders: %w", err)
	}
	var out []Labelled
	for _, p := range people {
		if !p.IsDir() || strings.HasPrefix(p.Name(), ".") {
			continue
		}
		if err := job.ValidPerson(p.Name()); err != nil {
			return nil, fmt.Errorf("enrol folders: folder %s: %w", p.Name(), err)
		}
		files, err := os.ReadDir(filepath.Join(root, p.Name()))
		if err != nil {
			return nil, fmt.Errorf("enrol folders: %w", err)
		}
		n := 0
		for _, f := range files {
			if f.Type().IsRegular() && !strings.HasPrefix(f.Name(), ".") && imagefiles.IsImageName(f.Name()) {
				out = append(out, Labelled{Person: p.Name(), Image: imagefiles.OSFile(filepath.Join(root, p.Name(), f.Name()))})
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("enrol folders: folder %s has no images ", p.Name())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("enrol folders: %s has no person folders", root)
	}
	return out, nil
}

// FromCSV reads labels in the course's format, a header `Image,Results` and
// rows `test_00,Paul`, and finds each image in imagesDir (a folder, or a
// .zip archive read in place) by name; a name
// without extension matches the one image file with that stem.
func FromCSV(imagesDir, labelsPath string) ([]Labelled, error) {
	fh, err := os.Open(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer fh.Close()
	byStem, byName, err := imagefiles.Index(imagesDir)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(fh)
	r.FieldsPerRecord = 2
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("labels %s: empty file, want header Image,Results", labelsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", labelsPath, err)
	}
	if !strings.EqualFold(strings.TrimPrefix(strings.TrimSpace(header[0]), "\ufeff"), "Image") || !strings.EqualFold(strings.TrimSpace(header[1]), "Results") {
		return nil, fmt.Errorf("labels %s: header %q, want Image,Results", labelsPath, strings.Join(header, ","))
	}
	seen := map[string]string{}
	var out []Labelled
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("labels %s: %w", labelsPath, err)
		}
		line, _ := r.FieldPos(0)
		img, person := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if img == "" && person == "" {
			continue
		}
		if err := job.ValidPerson(person); err != nil {
			return nil, fmt.Errorf("labels %s line %d: %w", labelsPath, line, err)
		}
		if prev, dup := seen[img]; dup {
			if prev != person {
				return nil, fmt.Errorf("labels %s line %d: image %s labelled both %s and %s", labelsPath, line, img, prev, person)
			}
			continue
		}
		seen[img] = person
		p, ok := byName[img]
		if !ok {
			paths := byStem[img]
			switch len(paths) {
			case 0:
				return nil, fmt.Errorf("labels %s line %d: no image %s in %s", labelsPath, line, img, imagesDir)
			case 1:
				p = paths[0]
			default:
				var names []string
				for _, f := range paths {
					names = append(names, f.Name)
				}
				return nil, fmt.Errorf("labels %s line %d: image %s is ambiguous in %s: %s", labelsPath, line, img, imagesDir, strings.Join(names, ", "))
			}
		}
		out = append(out, Labelled{Person: person, Image: p})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("labels %s: no rows after the header", labelsPath)
	}
	return out, nil
}
