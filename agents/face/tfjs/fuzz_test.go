package tfjs

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary manifests and shard bytes to the parser: it must
// return weights or an error, never panic or allocate beyond its bound.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"paths":["s"],"weights":[{"name":"x","shape":[2],"dtype":"float32"}]}]`), f32(1, 2))
	f.Add([]byte(`[{"paths":["s"],"weights":[{"name":"q","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}}]}]`), []byte{1, 2, 3})
	f.Add([]byte(`[{"paths":["s","t"],"weights":[]}]`), []byte{})
	f.Fuzz(func(t *testing.T, manifest, shard []byte) {
		w, err := Parse(manifest, func(p string) ([]byte, error) {
			if p == "missing" {
				return nil, errors.New("no such shard")
			}
			return shard, nil
		})
		if err != nil {
			return
		}
		for name, tensor := range w {
			n := 1
			for _, d := range tensor.Shape {
				n *= d
			}
			if n != len(tensor.Data) {
				t.Fatalf("tensor %q: shape %v but %d values", name, tensor.Shape, len(tensor.Data))
			}
		}
	})
}
