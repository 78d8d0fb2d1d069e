// Package e2e holds the end-to-end tests: they build the facecloud binary,
// run it as the user would (local, web, worker, enroll, submit) on the
// course's dataset, and check answers, faults, scaling and bad input over
// HTTP. They skip with a reason when the dataset is absent and in -short mode.
package e2e
