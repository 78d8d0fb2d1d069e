package tfjs

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func f32(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func TestParse(t *testing.T) {
	shards := map[string][]byte{
		// "a" (2x2 float32) spans both shards of group 0.
		"g0-1.bin": f32(1, 2, 3),
		"g0-2.bin": append(f32(4), 0, 255, 10),
		"g1.bin":   {1, 0, 2, 0},
	}
	manifest := `[
	 {"paths":["g0-1.bin","g0-2.bin"],"weights":[
	   {"name":"a","shape":[2,2],"dtype":"float32"},
	   {"name":"q","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}}]},
	 {"paths":["g1.bin"],"weights":[
	   {"name":"q16","shape":[2],"dtype":"float32","quantization":{"dtype":"uint16","scale":2,"min":1}}]}]`
	w, err := Parse([]byte(manifest), func(p string) ([]byte, error) { return shards[p], nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"a": {1, 2, 3, 4}, "q": {-1, 126.5, 4}, "q16": {3, 5}}
	for name, vs := range want {
		got := w[name].Data
		if len(got) != len(vs) {
			t.Fatalf("%s: %v, want %v", name, got, vs)
		}
		for i := range vs {
			if got[i] != vs[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], vs[i])
			}
		}
	}
	if _, err := w.Get("a", 4); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Get with a wrong shape: err = %v, want one naming the tensor", err)
	}
	if _, err := w.Get("nope", 1); err == nil {
		t.Error("Get of a missing tensor: no error")
	}
	if w.Bytes() != 4*9 {
		t.Errorf("Bytes = %d, want 36", w.Bytes())
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		manifest string
		shard    []byte
		want     string
	}{
		"short shard":      {`[{"paths":["s"],"weights":[{"name":"x","shape":[3],"dtype":"float32"}]}]`, f32(1, 2), `tensor "x": needs 12 bytes`},
		"bytes left over":  {`[{"paths":["s"],"weights":[{"name":"x","shape":[1],"dtype":"float32"}]}]`, f32(1, 2), "shards hold 8 bytes, tensors use 4"},
		"int32 dtype":      {`[{"paths":["s"],"weights":[{"name":"x","shape":[1],"dtype":"int32"}]}]`, f32(1), `dtype "int32" not supported`},
		"float16 quant":    {`[{"paths":["s"],"weights":[{"name":"x","shape":[2],"dtype":"float32","quantization":{"dtype":"float16"}}]}]`, f32(1), `quantization dtype "float16"`},
		"missing scale":    {`[{"paths":["s"],"weights":[{"name":"x","shape":[4],"dtype":"float32","quantization":{"dtype":"uint8","min":0}}]}]`, f32(1), "lacks scale"},
		"zero dimension":   {`[{"paths":["s"],"weights":[{"name":"x","shape":[0],"dtype":"float32"}]}]`, nil, "out of range"},
		"huge shape":       {`[{"paths":["s"],"weights":[{"name":"x","shape":[65536,65536],"dtype":"float32"}]}]`, nil, "out of range"},
		"duplicate":        {`[{"paths":["s"],"weights":[{"name":"x","shape":[1],"dtype":"float32"},{"name":"x","shape":[1],"dtype":"float32"}]}]`, f32(1, 2), "listed twice"},
		"no groups":        {`[]`, nil, "no weight groups"},
		"no shards":        {`[{"paths":[],"weights":[]}]`, nil, "names no shard"},
		"not json":         {`{`, nil, "decode weights manifest"},
		"missing shard fn": {`[{"paths":["missing"],"weights":[]}]`, nil, "shard missing"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.manifest), func(p string) ([]byte, error) {
				if p == "missing" {
					return nil, os.ErrNotExist
				}
				return tc.shard, nil
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadFileRejectsEscapingShard(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m-weights_manifest.json")
	if err := os.WriteFile(p, []byte(`[{"paths":["../x.bin"],"weights":[]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "leaves the model directory") {
		t.Fatalf("err = %v", err)
	}
}
