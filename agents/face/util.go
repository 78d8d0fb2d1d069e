package face

import "math"

func floor(x float64) float64 { return math.Floor(x) }
func ceil(x float64) float64  { return math.Ceil(x) }

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
