package perturb

import (
	"archive/zip"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/facecloud/facecloud/agents/client"
	"github.com/facecloud/facecloud/agents/imageio"
)

// Course is the distinct faces of the course dataset.
type Course struct {
	// Stems are the distinct pictures' names (the first file of each
	// distinct content, in name order), e.g. test_00.
	Stems []string
	// Data holds each stem's original file bytes.
	Data map[string][]byte
	// Images holds each stem's decoded pixels.
	Images map[string]image.Image
	// Labels names the person in each stem.
	Labels map[string]string
}

// LoadCourse reads face_images_100.zip and classification_100.csv from the
// course dataset folder and keeps one file per distinct picture.
func LoadCourse(dataset string) (*Course, error) {
	labels, err := client.ReadLabelsFile(filepath.Join(dataset, "classification_100.csv"))
	if err != nil {
		return nil, fmt.Errorf("course dataset: %w", err)
	}
	zr, err := zip.OpenReader(filepath.Join(dataset, "face_images_100.zip"))
	if err != nil {
		return nil, fmt.Errorf("course dataset: %w", err)
	}
	defer zr.Close()
	files := append([]*zip.File(nil), zr.File...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	c := &Course{Data: map[string][]byte{}, Images: map[string]image.Image{}, Labels: map[string]string{}}
	seen := map[[32]byte]bool{}
	for _, f := range files {
		if f.FileInfo().IsDir() || !strings.EqualFold(path.Ext(f.Name), ".jpg") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("course dataset %s: %w", f.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("course dataset %s: %w", f.Name, err)
		}
		sum := sha256.Sum256(data)
		if seen[sum] {
			continue
		}
		seen[sum] = true
		stem := strings.TrimSuffix(path.Base(f.Name), path.Ext(f.Name))
		who, ok := labels[stem]
		if !ok {
			return nil, fmt.Errorf("course dataset: %s has no label", stem)
		}
		img, err := imageio.Decode(data, imageio.DefaultLimits)
		if err != nil {
			return nil, fmt.Errorf("course dataset %s: %w", f.Name, err)
		}
		c.Stems = append(c.Stems, stem)
		c.Data[stem], c.Images[stem], c.Labels[stem] = data, img, who
	}
	if len(c.Stems) == 0 {
		return nil, errors.New("course dataset: no JPEG images in face_images_100.zip")
	}
	return c, nil
}
