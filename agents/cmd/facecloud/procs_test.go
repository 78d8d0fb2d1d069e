package main

import (
	"strings"
	"testing"
)

func TestLocalProcs(t *testing.T) {
	tests := map[string]struct {
		cores, maxWorkers, web, worker int
		wantWeb, wantWorker            int
	}{
		"one core":                     {1, 1, 0, 0, 1, 1},
		"two cores, a worker per core": {2, 2, 0, 0, 1, 1},
		"two cores, one worker":        {2, 1, 0, 0, 1, 2},
		"more workers than cores":      {2, 8, 0, 0, 1, 1},
		"eight cores, a worker each":   {8, 8, 0, 0, 2, 1},
		"eight cores, two workers":     {8, 2, 0, 0, 2, 4},
		"sixteen cores":                {16, 100, 0, 0, 4, 1},
		"five cores rounds web up":     {5, 5, 0, 0, 2, 1},
		"flags win":                    {8, 8, 3, 2, 3, 2},
		"no cores reported":            {0, 2, 0, 0, 1, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			web, worker := localProcs(tc.cores, tc.maxWorkers, tc.web, tc.worker)
			if web != tc.wantWeb || worker != tc.wantWorker {
				t.Errorf("localProcs(%d, %d, %d, %d) = %d, %d; want %d, %d",
					tc.cores, tc.maxWorkers, tc.web, tc.worker, web, worker, tc.wantWeb, tc.wantWorker)
			}
		})
	}
}

func TestValidProcs(t *testing.T) {
	for _, n := range []int{0, 1, maxProcs} {
		if err := validProcs("procs", n); err != nil {
			t.Errorf("validProcs(%d): %v", n, err)
		}
	}
	for _, n := range []int{-1, maxProcs + 1} {
		err := validProcs("procs", n)
		if err == nil || !strings.Contains(err.Error(), "out of range 0..1024") {
			t.Errorf("validProcs(%d) = %v; want the allowed range", n, err)
		}
	}
}
