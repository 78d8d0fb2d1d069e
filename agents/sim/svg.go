package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// chart geometry, in SVG user units.
const (
	chartW      = 960
	chartH      = 574
	marginLeft  = 64
	marginRight = 180
	panelTop1   = 84
	panelH      = 190
	panelGap    = 70
	maxPoints   = 1500
)

type series struct {
	name, color string
	dash        bool
	value       func(Sample) int
}

// WriteSVG draws the queue depth and the fleet size over time.
func (r *Result) WriteSVG(w io.Writer, title string) error {
	samples := downsample(r.Samples, maxPoints)
	span := r.Span
	if len(samples) > 0 {
		span = max(span, samples[len(samples)-1].T)
	}
	if span <= 0 {
		span = time.Second
	}
	unit, unitName := time.Second, "s"
	switch {
	case span > 3*time.Hour:
		unit, unitName = time.Hour, "h"
	case span > 10*time.Minute:
		unit, unitName = time.Minute, "min"
	}
	var b strings.Builder
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginLeft, html.EscapeString(title))
	f(`<text x="%d" y="44" fill="#444">%s</text>`+"\n", marginLeft, html.EscapeString(fmt.Sprintf(
		"%d requests, total time %s, p50 %s, p95 %s, %.0f instance-seconds, $%.4f per 1,000 requests",
		r.Requests, secs(r.TotalTime), secs(r.Latency.P50), secs(r.Latency.P95), r.InstanceSeconds, r.Per1000(r.Cost.Total()))))
	panels := []struct {
		title  string
		top    int
		series []series
	}{
		{"request queue (messages)", panelTop1, []series{
			{"visible (queued)", "#1f77b4", false, func(s Sample) int { return s.Visible }},
			{"in flight (at a worker)", "#ff7f0e", false, func(s Sample) int { return s.InFlight }},
		}},
		{"worker fleet (instances)", panelTop1 + panelH + panelGap, []series{
			{"desired", "#7f7f7f", true, func(s Sample) int { return s.Desired }},
			{"up (booting or working)", "#2ca02c", false, func(s Sample) int { return s.Up }},
			{"taking jobs", "#0b5d1e", false, func(s Sample) int { return s.Ready }},
		}},
	}
	plotW := float64(chartW - marginLeft - marginRight)
	x := func(t time.Duration) float64 { return marginLeft + plotW*float64(t)/float64(span) }
	for _, p := range panels {
		top := float64(p.top)
		ymax := 1
		for _, sm := range samples {
			for _, s := range p.series {
				ymax = max(ymax, s.value(sm))
			}
		}
		step := math.Max(niceStep(float64(ymax), 4), 1)
		top1 := math.Ceil(float64(ymax)/step) * step
		y := func(v float64) float64 { return top + panelH - panelH*v/top1 }
		f(`<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", marginLeft, top-10, html.EscapeString(p.title))
		for v := 0.0; v <= top1+step/2; v += step {
			f(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", marginLeft, marginLeft+plotW, y(v), y(v))
			f(`<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", marginLeft-6, y(v)+4, trimFloat(v))
		}
		tstep := niceStep(float64(span)/float64(unit), 8) * float64(unit)
		for t := 0.0; t <= float64(span)*1.0001; t += tstep {
			xt := x(time.Duration(t))
			f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", xt, xt, top, top+panelH)
			f(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`+"\n", xt, top+panelH+16, trimFloat(t/float64(unit)))
		}
		f(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">time (%s)</text>`+"\n", marginLeft+plotW/2, top+panelH+34, unitName)
		f(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#999"/>`+"\n", marginLeft, top, plotW, panelH)
		for i, s := range p.series {
			var d strings.Builder
			for k, sm := range samples {
				if k == 0 {
					fmt.Fprintf(&d, "M%.1f %.1f", x(sm.T), y(float64(s.value(sm))))
					continue
				}
				fmt.Fprintf(&d, "H%.1fV%.1f", x(sm.T), y(float64(s.value(sm))))
			}
			dash := ""
			if s.dash {
				dash = ` stroke-dasharray="6 4"`
			}
			f(`<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", d.String(), s.color, dash)
			ly := top + 14 + float64(i)*20
			lx := marginLeft + plotW + 16
			f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+22, ly-4, ly-4, s.color, dash)
			f(`<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+28, ly, html.EscapeString(s.name))
		}
	}
	f("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// downsample keeps at most n samples, each bucket's largest values, so
// short peaks stay visible.
func downsample(s []Sample, n int) []Sample {
	if len(s) <= n {
		return s
	}
	per := (len(s) + n - 1) / n
	out := make([]Sample, 0, n+1)
	for i := 0; i < len(s); i += per {
		m := s[i]
		for _, v := range s[i:min(i+per, len(s))] {
			m.Visible, m.InFlight = max(m.Visible, v.Visible), max(m.InFlight, v.InFlight)
			m.Desired, m.Up, m.Ready = max(m.Desired, v.Desired), max(m.Up, v.Up), max(m.Ready, v.Ready)
		}
		out = append(out, m)
	}
	return out
}

// niceStep is a 1, 2 or 5 times a power of ten that cuts span into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return math.Max(m*p, 1e-9)
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}
