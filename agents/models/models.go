// Package models obtains the published face-api weights the engine runs on:
// it fetches the npm package with `npm pack` (so no registry host is named by
// the project), takes the few files the engine needs out of the tarball,
// checks each against a pinned sha256 and caches them outside the repository.
//
// A cache directory holds the model files at its top level and the package's
// demo photos under demo/:
//
//	DIR/face_recognition_model.bin
//	DIR/face_recognition_model-weights_manifest.json
//	DIR/tiny_face_detector_model.bin ...
//	DIR/demo/sample1.jpg ...
package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Package is the pinned npm package the weights come from (MIT licence).
const Package = "@vladmandic/face-api@1.7.15"

// EnvDir names the environment variable that overrides DefaultDir.
const EnvDir = "FACECLOUD_MODELS"

// File is one pinned file of the cache.
type File struct {
	// Name is the file's path inside the cache directory (slash-separated).
	Name string
	// Source is the file's path inside the package tarball.
	Source string
	// SHA256 is the hex sha256 the file must have.
	SHA256 string
}

// Files lists every file Ensure provides, with its pinned sum.
var Files = []File{
	{"face_recognition_model.bin", "package/model/face_recognition_model.bin", "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"},
	{"face_recognition_model-weights_manifest.json", "package/model/face_recognition_model-weights_manifest.json", "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b"},
	{"tiny_face_detector_model.bin", "package/model/tiny_face_detector_model.bin", "b7503ce7df31039b1c43316a9b865cab6a70dd748cc602d3fa28b551503c3871"},
	{"tiny_face_detector_model-weights_manifest.json", "package/model/tiny_face_detector_model-weights_manifest.json", "5d1af4849ac48d5b985f4a9b16010c512353ddd6fcc63d50fd0bc9e9e64296e5"},
	{"face_landmark_68_model.bin", "package/model/face_landmark_68_model.bin", "4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b"},
	{"face_landmark_68_model-weights_manifest.json", "package/model/face_landmark_68_model-weights_manifest.json", "ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9"},
	{"demo/sample1.jpg", "package/demo/sample1.jpg", "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51"},
	{"demo/sample2.jpg", "package/demo/sample2.jpg", "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691"},
	{"demo/sample3.jpg", "package/demo/sample3.jpg", "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936"},
	{"demo/sample4.jpg", "package/demo/sample4.jpg", "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc"},
	{"demo/sample5.jpg", "package/demo/sample5.jpg", "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938"},
	{"demo/sample6.jpg", "package/demo/sample6.jpg", "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87"},
}

// Sentinel errors, wrapped with the detail.
var (
	// ErrNoNPM means npm is not installed or not on PATH.
	ErrNoNPM = errors.New("npm not found")
	// ErrFetch means `npm pack` failed (network, registry, disk).
	ErrFetch = errors.New("npm pack failed")
	// ErrChecksum means a file's sha256 differs from the pinned sum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrArchive means the tarball is unreadable or lacks a pinned file.
	ErrArchive = errors.New("bad package archive")
)

// maxFileBytes bounds what Install reads for one file; the largest pinned
// file is 6.4 MB.
const maxFileBytes = 64 << 20

// DefaultDir is $FACECLOUD_MODELS, else face-api-1.7.15 in the user's cache
// directory (~/.cache/facecloud on Linux), else in the temp directory when
// the system names no cache directory.
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "facecloud", "face-api-1.7.15")
}

// Verify checks that every pinned file is in dir with its pinned sum. The
// error names the first file that is missing or wrong.
func Verify(dir string) error {
	for _, f := range Files {
		if err := verifyFile(filepath.Join(dir, filepath.FromSlash(f.Name)), f); err != nil {
			return err
		}
	}
	return nil
}

func verifyFile(p string, f File) error {
	fh, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("model file %s: %w", f.Name, err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return fmt.Errorf("model file %s: %w", f.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("model file %s: %w: sha256 %s, want %s", f.Name, ErrChecksum, got, f.SHA256)
	}
	return nil
}

// IsEngineFile reports whether f is one the face engine loads; the others
// are the package's demo photos, which only local demos use.
func IsEngineFile(f File) bool { return !strings.HasPrefix(f.Name, "demo/") }

// EngineFiles are the pinned files the face engine loads: the weights and
// their manifests, what the stack ships to its instances.
func EngineFiles() []File {
	var out []File
	for _, f := range Files {
		if IsEngineFile(f) {
			out = append(out, f)
		}
	}
	return out
}

// VerifyEngine checks that every engine file is in dir with its pinned
// sum; the error names the first that is missing or wrong.
func VerifyEngine(dir string) error {
	for _, f := range EngineFiles() {
		if err := verifyFile(filepath.Join(dir, filepath.FromSlash(f.Name)), f); err != nil {
			return err
		}
	}
	return nil
}

// ErrReadOnly means a model directory lacks a file and is not writable, so
// nothing is fetched into it.
var ErrReadOnly = errors.New("model directory is read-only")

// EnsureEngine makes dir hold the engine's files, for an agent about to
// load the engine. A directory that holds them already (a deployed host's,
// filled at boot or baked into its image, without demo photos) is used as
// it is: nothing is fetched or written. A writable directory that lacks one
// is filled as Ensure does; a read-only one is an error naming the file,
// since fetching there can only fail.
func EnsureEngine(ctx context.Context, dir string) error {
	err := VerifyEngine(dir)
	if err == nil {
		return nil
	}
	if !writableDir(dir) {
		return fmt.Errorf("models: %w: %w (%s is not writable by this process, so nothing is fetched into it; install the engine files there)", ErrReadOnly, err, dir)
	}
	return Ensure(ctx, dir)
}

// writableDir is writable; tests running as root, whom no permission bit
// stops, replace it.
var writableDir = writable

// writable reports whether this process may create files in dir, or
// create dir itself when it does not exist yet.
func writable(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil {
			return fi.IsDir() && unix.Access(d, unix.W_OK) == nil
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// Ensure makes dir hold every pinned file: when one is missing or wrong it
// runs `npm pack` for Package into a temporary directory and installs from
// the tarball. Concurrent callers are safe: each writes its own temporary
// files and renames them into place, and the files are identical.
func Ensure(ctx context.Context, dir string) error {
	if Verify(dir) == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	removeStale(dir)
	tmp, err := os.MkdirTemp(dir, ".fetch-")
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer os.RemoveAll(tmp)
	tgz, err := pack(ctx, tmp)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	fh, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer fh.Close()
	return Install(ctx, dir, fh)
}

// staleAfter is the age after which a staging directory is taken as left
// behind by a killed process (a fetch takes seconds).
const staleAfter = time.Hour

// removeStale deletes staging directories of fetches that were killed.
func removeStale(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !(strings.HasPrefix(e.Name(), ".fetch-") || strings.HasPrefix(e.Name(), ".install-")) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAfter {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// pack runs `npm pack Package` in dir and returns the tarball's path.
func pack(ctx context.Context, dir string) (string, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("%w in PATH: install Node.js and npm to fetch %s", ErrNoNPM, Package)
	}
	cmd := exec.CommandContext(ctx, npm, "pack", Package, "--loglevel=error", "--pack-destination", dir)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrFetch, Package, ctx.Err())
		}
		return "", fmt.Errorf("%w: %s: %s", ErrFetch, Package, npmReason(stderr.String(), err))
	}
	matches, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil || len(matches) != 1 {
		return "", fmt.Errorf("%w: %s: npm wrote %d tarballs, want 1", ErrFetch, Package, len(matches))
	}
	return matches[0], nil
}

// npmReason condenses npm's multi-line error output to one line: its error
// code and the first line that explains it.
func npmReason(stderr string, err error) string {
	var code, why string
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "npm error ")
		if !ok {
			rest, ok = strings.CutPrefix(strings.TrimSpace(line), "npm ERR! ")
		}
		rest = strings.TrimSpace(rest)
		switch {
		case !ok || rest == "":
		case strings.HasPrefix(rest, "code "):
			if code == "" {
				code = strings.TrimPrefix(rest, "code ")
			}
		case why == "" && !strings.HasPrefix(rest, "syscall ") && !strings.HasPrefix(rest, "errno ") &&
			!strings.HasPrefix(rest, "at ") && !strings.Contains(rest, "complete log"):
			why = rest
		}
	}
	switch {
	case code != "" && why != "":
		return code + ": " + why
	case why != "":
		return why
	case code != "":
		return code
	}
	return err.Error()
}

// Install takes the pinned files out of a package tarball (gzip-compressed
// tar as `npm pack` writes it), checks every sum and only then renames the
// files into dir, so a bad tarball leaves dir as it was.
func Install(ctx context.Context, dir string, tgz io.Reader) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	stage, err := os.MkdirTemp(dir, ".install-")
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer os.RemoveAll(stage)

	want := make(map[string]File, len(Files))
	for _, f := range Files {
		want[f.Source] = f
	}
	zr, err := gzip.NewReader(tgz)
	if err != nil {
		return fmt.Errorf("models: %w: %w", ErrArchive, err)
	}
	tr := tar.NewReader(zr)
	got := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("models: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("models: %w: %w", ErrArchive, err)
		}
		f, ok := want[path.Clean(hdr.Name)]
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := stageFile(stage, f, tr); err != nil {
			return fmt.Errorf("models: %w", err)
		}
		got[f.Source] = true
	}
	for _, f := range Files {
		if !got[f.Source] {
			return fmt.Errorf("models: %w: %s lacks %s", ErrArchive, Package, f.Source)
		}
	}
	for _, f := range Files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("models: %w", err)
		}
		if err := os.Rename(filepath.Join(stage, filepath.FromSlash(f.Name)), dst); err != nil {
			return fmt.Errorf("models: install %s: %w", f.Name, err)
		}
	}
	return nil
}

// stageFile writes one file under stage, checking its sum as it goes.
func stageFile(stage string, f File, r io.Reader) error {
	dst := filepath.Join(stage, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, maxFileBytes+1))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrArchive, f.Source, err)
	}
	if n > maxFileBytes {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrArchive, f.Source, maxFileBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%s: %w: sha256 %s, want %s", f.Source, ErrChecksum, got, f.SHA256)
	}
	return nil
}
