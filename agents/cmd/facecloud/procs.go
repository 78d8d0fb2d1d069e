package main

import "fmt"

// maxProcs is the largest --procs, --web-procs or --worker-procs.
const maxProcs = 1024

// validProcs states the allowed range of a GOMAXPROCS flag.
func validProcs(flag string, n int) error {
	if n < 0 || n > maxProcs {
		return fmt.Errorf("--%s %d out of range 0..%d (0: sized to the machine)", flag, n, maxProcs)
	}
	return nil
}

// localProcs sizes the Go processes of facecloud local to their share of
// the machine's cores: the GOMAXPROCS of this process (web agent, scaler,
// fleet) and of each worker, where web and worker are the flags (0: sized
// here). Every Go process otherwise takes all the cores, and each hop of a
// request from one goroutine to another can wake a second thread that
// spins, and sleeps, looking for work to steal. Measured on 2 cores, one
// request at a time came back about 0.4 ms sooner, in every one of nine
// alternating rounds; under load the CPU per request did not move beyond
// the noise (docs/benchmarks.md, "Each process sized to its share of the
// cores").
//
// A worker gets the cores divided among the most workers the fleet runs,
// at least one: the fleet's size, not each worker, is the parallelism. The
// web agent spends about a quarter of the engine's CPU per request, a fifth
// of the machine once the engines keep it busy, so it gets a quarter of the
// cores, at least one.
func localProcs(cores, maxWorkers, web, worker int) (webProcs, workerProcs int) {
	cores = max(cores, 1)
	webProcs, workerProcs = web, worker
	if webProcs == 0 {
		webProcs = (cores + 3) / 4
	}
	if workerProcs == 0 {
		workerProcs = max(cores/max(maxWorkers, 1), 1)
	}
	return webProcs, workerProcs
}
