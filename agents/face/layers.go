package face

import (
	"github.com/facecloud/facecloud/agents/face/nn"
	"github.com/facecloud/facecloud/agents/face/tfjs"
)

// Layer loaders and pieces the three networks share: their manifests name
// weights the same way (prefix/filters, prefix/bias, prefix/depthwise_filter,
// prefix/pointwise_filter), so one loader serves each layer kind.

// conv loads prefix/{filters,bias} as a k×k convolution cin → cout.
func conv(w tfjs.Weights, prefix string, k, cin, cout, stride int) (*nn.Conv2D, error) {
	f, err := w.Get(prefix+"/filters", k, k, cin, cout)
	if err != nil {
		return nil, err
	}
	b, err := w.Get(prefix+"/bias", cout)
	if err != nil {
		return nil, err
	}
	return nn.NewConv2D(f, k, k, cin, cout, stride, b), nil
}

// separable is a depthwise 3×3 convolution followed by a pointwise one.
type separable struct {
	depthwise []float32
	pointwise *nn.Conv2D
}

// loadSeparable loads prefix/{depthwise_filter,pointwise_filter,bias} as a
// separable convolution cin → cout.
func loadSeparable(w tfjs.Weights, prefix string, cin, cout int) (separable, error) {
	dw, err := w.Get(prefix+"/depthwise_filter", 3, 3, cin, 1)
	if err != nil {
		return separable{}, err
	}
	pw, err := w.Get(prefix+"/pointwise_filter", 1, 1, cin, cout)
	if err != nil {
		return separable{}, err
	}
	b, err := w.Get(prefix+"/bias", cout)
	if err != nil {
		return separable{}, err
	}
	return separable{depthwise: dw, pointwise: nn.NewConv2D(pw, 1, 1, cin, cout, 1, b)}, nil
}

// globalMean averages x over its height and width, one value per channel.
func globalMean(x nn.Tensor) []float32 {
	mean := make([]float32, x.C)
	for i := 0; i < x.H*x.W; i++ {
		for c, v := range x.Data[i*x.C : (i+1)*x.C] {
			mean[c] += v
		}
	}
	for c := range mean {
		mean[c] /= float32(x.H * x.W)
	}
	return mean
}
