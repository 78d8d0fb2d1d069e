// Package face is the face engine: the TinyFaceDetector, the 68-point
// landmark net and the 128-d FaceRecognitionNet of face-api (vladmandic
// 1.7.15) in pure Go, loading the published weights once per process.
package face

import "time"

// DescriptorSize is the length of a face descriptor.
const DescriptorSize = 128

// Descriptor is a face embedding; two photos of one person lie within about
// 0.6 of each other in Euclidean distance.
type Descriptor [DescriptorSize]float32

// Box is a rectangle in the pixels of the original (orientation-corrected) image.
type Box struct {
	X, Y, W, H float64
}

// Found is one face the engine described.
type Found struct {
	Box Box
	// Score is the detector's confidence; for a face crop described whole,
	// the crop check's.
	Score      float64
	Descriptor Descriptor
	// Quality grades the face for a quality filter.
	Quality Quality
}

// Timings says where the engine's time went for one image.
type Timings struct {
	Decode, Detect, Describe time.Duration
}

// Recognition is the engine's answer for one image.
type Recognition struct {
	Width, Height int
	// Whole is true when the image was small enough to be taken as a face
	// crop, passed the crop check, and was described whole.
	Whole bool
	// Faces are sorted by box area, largest first. Empty when no face was found.
	Faces   []Found
	Timings Timings
}
