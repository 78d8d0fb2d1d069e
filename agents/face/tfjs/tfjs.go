// Package tfjs reads weights saved in the TensorFlow.js layers format: a
// JSON manifest (`*-weights_manifest.json`) naming tensors, their shapes and
// optional quantization, and one or more binary shards holding the values
// back to back. face-api publishes its networks this way.
//
// Only what those networks need is supported: float32 tensors stored as
// float32, or quantized to uint8/uint16 with an affine scale and minimum.
// Everything else fails with an error naming the tensor, so a changed model
// file cannot load silently wrong.
package tfjs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Tensor is one named weight, dequantized to float32, in row-major order of Shape.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Weights maps tensor names to tensors.
type Weights map[string]*Tensor

// Bytes is the memory the tensors' values take.
func (w Weights) Bytes() int {
	n := 0
	for _, t := range w {
		n += 4 * len(t.Data)
	}
	return n
}

// Get returns the values of the named tensor after checking that its shape is
// exactly shape; a missing tensor or another shape is an error naming it.
func (w Weights) Get(name string, shape ...int) ([]float32, error) {
	t, ok := w[name]
	if !ok {
		return nil, fmt.Errorf("tensor %q: not in the weights", name)
	}
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("tensor %q: shape %v, want %v", name, t.Shape, shape)
	}
	return t.Data, nil
}

type quantization struct {
	Dtype string   `json:"dtype"`
	Scale *float64 `json:"scale"`
	Min   *float64 `json:"min"`
}

type entry struct {
	Name         string        `json:"name"`
	Shape        []int         `json:"shape"`
	Dtype        string        `json:"dtype"`
	Quantization *quantization `json:"quantization"`
}

type group struct {
	Paths   []string `json:"paths"`
	Weights []entry  `json:"weights"`
}

// maxElements bounds one tensor (256 Mi values), so a hostile manifest cannot
// make the loader allocate without limit before the size check.
const maxElements = 1 << 28

// LoadFile reads the manifest at path and its shards, which the manifest
// names relative to the manifest's directory.
func LoadFile(path string) (Weights, error) {
	manifest, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read weights manifest: %w", err)
	}
	dir := filepath.Dir(path)
	w, err := Parse(manifest, func(shard string) ([]byte, error) {
		if !filepath.IsLocal(shard) {
			return nil, fmt.Errorf("shard path %q leaves the model directory", shard)
		}
		return os.ReadFile(filepath.Join(dir, shard))
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return w, nil
}

// Parse decodes a manifest, reading each group's shards through open, and
// checks that every shard group holds exactly the bytes its tensors need.
func Parse(manifest []byte, open func(shard string) ([]byte, error)) (Weights, error) {
	var groups []group
	if err := json.Unmarshal(manifest, &groups); err != nil {
		return nil, fmt.Errorf("decode weights manifest: %w", err)
	}
	if len(groups) == 0 {
		return nil, errors.New("weights manifest lists no weight groups")
	}
	out := Weights{}
	for gi, g := range groups {
		if len(g.Paths) == 0 {
			return nil, fmt.Errorf("weight group %d names no shard files", gi)
		}
		var buf []byte
		for _, p := range g.Paths {
			b, err := open(p)
			if err != nil {
				return nil, fmt.Errorf("weight group %d: shard %s: %w", gi, p, err)
			}
			buf = append(buf, b...)
		}
		off := 0
		for _, e := range g.Weights {
			if _, dup := out[e.Name]; dup {
				return nil, fmt.Errorf("tensor %q: listed twice", e.Name)
			}
			t, n, err := decode(e, buf[off:])
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
			}
			out[e.Name] = t
			off += n
		}
		if off != len(buf) {
			return nil, fmt.Errorf("weight group %d: shards hold %d bytes, tensors use %d", gi, len(buf), off)
		}
	}
	return out, nil
}

// decode reads one tensor from the front of b, returning it and the bytes used.
func decode(e entry, b []byte) (*Tensor, int, error) {
	if e.Dtype != "float32" {
		return nil, 0, fmt.Errorf("dtype %q not supported (only float32)", e.Dtype)
	}
	count := 1
	for _, d := range e.Shape {
		if d <= 0 || d > maxElements || count > maxElements/d {
			return nil, 0, fmt.Errorf("shape %v out of range (each dimension 1..%d, at most %d values)", e.Shape, maxElements, maxElements)
		}
		count *= d
	}
	width := 4
	q := e.Quantization
	if q != nil {
		switch q.Dtype {
		case "uint8":
			width = 1
		case "uint16":
			width = 2
		default:
			return nil, 0, fmt.Errorf("quantization dtype %q not supported (uint8 or uint16)", q.Dtype)
		}
		if q.Scale == nil || q.Min == nil {
			return nil, 0, errors.New("quantization lacks scale or min")
		}
	}
	need := count * width
	if len(b) < need {
		return nil, 0, fmt.Errorf("needs %d bytes, shards have %d left", need, len(b))
	}
	data := make([]float32, count)
	switch width {
	case 4:
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case 2:
		// Dequantize in float64 and round once, as tfjs does in JavaScript numbers.
		for i := range data {
			data[i] = float32(float64(binary.LittleEndian.Uint16(b[2*i:]))**q.Scale + *q.Min)
		}
	case 1:
		for i := range data {
			data[i] = float32(float64(b[i])**q.Scale + *q.Min)
		}
	}
	return &Tensor{Name: e.Name, Shape: slices.Clone(e.Shape), Data: data}, need, nil
}
